"""Full-text search over prompts: one tokenisation for both databases, CJK by single characters.

Latin words are indexed as words and found by prefix (`fox` finds "foxes"). Chinese, Japanese
and Korean text has no spaces, so every CJK character is indexed as its own token and a CJK
run in a query is a phrase of consecutive characters: `貓` and `藍色` both find "一隻藍色的貓",
with the index, whatever the length of the query.

SQLite keeps an FTS5 table (`generation_search`, rowid = the generation's rowid) in step with
`generation_generation` through triggers that call `imagegen_search_text`, a function every
connection registers (`register_sqlite_functions`). PostgreSQL uses a GIN index on the same
text built in SQL (`POSTGRES_DOCUMENT`), so nothing has to be kept in step.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Expression
from django.db.models.sql.compiler import SQLCompiler

# CJK radicals, punctuation, kana, unified ideographs (+ extension A), Hangul, compatibility
# ideographs and full-width forms: the same ranges in Python and in PostgreSQL's regex.
CJK_RANGES = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_CJK_CHAR = re.compile(f"([{CJK_RANGES}])")
_QUERY_TERMS = re.compile(f"[{CJK_RANGES}]+|[^\\W_{CJK_RANGES}]+")
MAX_TERMS = 12
MAX_QUERY_LENGTH = 200

SQLITE_FUNCTION = "imagegen_search_text"
POSTGRES_INDEX = "generation_prompt_search"
# Without fastupdate, new prompts go straight into the GIN index: with it they wait in a pending
# list that every search reads through until a vacuum merges it (7 ms per search after 120 000
# fresh images, 0.04 ms merged). Images arrive at provider speed, so the direct insert costs nothing.
POSTGRES_INDEX_OPTIONS = "fastupdate = off"
POSTGRES_DOCUMENT = (
    f"to_tsvector('simple'::regconfig, regexp_replace(lower({{column}}), '([{CJK_RANGES}])', ' \\1 ', 'g'))"
)


def index_text(prompt: str | None) -> str:
    """The text the index stores: lower case, every CJK character a word of its own."""
    return _CJK_CHAR.sub(r" \1 ", (prompt or "").lower())


@dataclass(frozen=True)
class Term:
    tokens: tuple[str, ...]  # one word, or consecutive CJK characters

    @property
    def is_phrase(self) -> bool:
        return len(self.tokens) > 1 or bool(_CJK_CHAR.match(self.tokens[0]))


def query_terms(query: str) -> list[Term]:
    """The words and CJK runs of a search box's text; punctuation and emoji are ignored."""
    terms = []
    for match in _QUERY_TERMS.finditer(query[:MAX_QUERY_LENGTH].lower()):
        run = match.group()
        if _CJK_CHAR.match(run):
            # CJK punctuation (、。「」) ends a phrase, as spaces end a word.
            for phrase in re.split(r"[^\w]+", run):
                if phrase:
                    terms.append(Term(tuple(phrase)))
        else:
            terms.append(Term((run,)))
    return terms[:MAX_TERMS]


def fts5_query(terms: list[Term]) -> str:
    """SQLite FTS5: every term must appear; words by prefix, CJK runs as phrases."""
    return " AND ".join(f'"{" ".join(t.tokens)}"' if t.is_phrase else f'"{t.tokens[0]}"*' for t in terms)


def tsquery(terms: list[Term], *, adjacent: bool = True) -> str:
    """PostgreSQL to_tsquery: the same meaning as `fts5_query`; without `adjacent`, a phrase's
    characters in any order (which the index answers without re-reading each prompt)."""
    within = " <-> " if adjacent else " & "
    return " & ".join(
        within.join(f"'{token}'" for token in t.tokens) if t.is_phrase else f"'{t.tokens[0]}':*" for t in terms
    )


def many_matches(terms: list[Term], count: int) -> bool:
    """Whether at least `count` prompts (anybody's) match, read off the index without ordering them."""
    if connection.vendor == "sqlite":
        sql = "SELECT count(*) FROM (SELECT rowid FROM generation_search WHERE generation_search MATCH %s LIMIT %s) m"
        params: list[Any] = [fts5_query(terms), count]
    elif connection.vendor == "postgresql":
        document = POSTGRES_DOCUMENT.format(column='"prompt"')
        sql = (
            f'SELECT count(*) FROM (SELECT 1 FROM "generation_generation" WHERE {document} @@ '  # noqa: S608
            "to_tsquery('simple'::regconfig, %s) LIMIT %s) m"
        )
        # Phrases loosened: it counts at least the phrase's matches, without a recheck of each prompt.
        params = [tsquery(terms, adjacent=False), count]
    else:
        return False
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (found,) = cursor.fetchone()
    return bool(found >= count)


class _SearchCondition(Expression):
    """A WHERE condition bound to one column of the query it filters (`column`), named by its terms."""

    output_field = BooleanField()
    conditional = True
    column = ""

    def __init__(self, terms: list[Term], source: Any = None) -> None:
        super().__init__()
        self.terms = terms
        self.source = source

    def get_source_expressions(self) -> list[Any]:
        return [self.source] if self.source is not None else []

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.source = exprs[0] if exprs else None

    def resolve_expression(self, query: Any = None, *args: Any, **kwargs: Any) -> _SearchCondition:
        if self.source is not None:  # already bound to its query (now inside a subquery)
            return super().resolve_expression(query, *args, **kwargs)
        clone = self.bound_to(query.resolve_ref(self.column))
        clone.is_summary = self.is_summary
        return clone

    def bound_to(self, source: Any) -> _SearchCondition:
        return type(self)(self.terms, source)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        raise NotImplementedError(f"Prompt search supports SQLite and PostgreSQL, not {connection.vendor}.")


# SQLite: the rowids of the prompts that match the search text (a parameter).
_SQLITE_MATCHING = "SELECT rowid FROM generation_search WHERE generation_search MATCH %s"


def _rowid_range(batches: str) -> str:
    """SQLite: the index lookup kept to the rowids of the images of `batches` (an SQL condition on batch_id)."""
    edge = "(SELECT {}(rowid) FROM generation_generation WHERE batch_id " + batches + ")"  # noqa: S608
    return f" AND rowid >= {edge.format('min')} AND rowid <= {edge.format('max')}"


class PromptMatches(_SearchCondition):
    """A WHERE condition on generations: the prompt contains every term (index-backed on both databases).

    With `within_batches` (SQLite), only index entries in the rowid range of those batches' images
    are looked at: a common term then costs the batches asked about, not all of its matches.
    """

    column = "prompt"  # on SQLite the match is by rowid, reached through this column's table alias

    def __init__(self, terms: list[Term], source: Any = None, within_batches: Sequence[Any] = ()) -> None:
        super().__init__(terms, source)
        self.within_batches = list(within_batches)

    def bound_to(self, source: Any) -> PromptMatches:
        return PromptMatches(self.terms, source, self.within_batches)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        table = compiler.quote_name_unless_alias(self.source.alias)
        # The alias is the compiler's own quoted table alias; the search text is a parameter.
        sql = f"{table}.rowid IN ({_SQLITE_MATCHING}"
        if not self.within_batches:
            return sql + ")", (fts5_query(self.terms),)
        # SQLite stores a UUID as its 32 hex digits (Django's UUIDField without a native type).
        ids = [uuid.UUID(str(batch_id)).hex for batch_id in self.within_batches]
        sql += _rowid_range(f"IN ({', '.join(['%s'] * len(ids))})") + ")"
        return sql, (fts5_query(self.terms), *ids, *ids)

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        column, params = compiler.compile(self.source)
        document = POSTGRES_DOCUMENT.format(column=column)
        return f"{document} @@ to_tsquery('simple'::regconfig, %s)", (*params, tsquery(self.terms))


class BatchPromptMatches(_SearchCondition):
    """A WHERE condition on batches: one of the batch's listed images matches every term.

    Asked batch by batch, so a page of batches in index order stops after its last row: a common
    term costs the batches the page walks, not all of its matches. On SQLite the index is looked
    up within the batch's own rowid range.
    """

    column = "id"

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        batch, params = compiler.compile(self.source)  # the compiler's own quoted column: no user text
        matching = _SQLITE_MATCHING + _rowid_range(f"= {batch}")
        sql = (
            "EXISTS (SELECT 1 FROM generation_generation AS search_image WHERE search_image.batch_id = "  # noqa: S608
            f"{batch} AND search_image.deleted_at IS NULL AND search_image.rowid IN ({matching}))"
        )
        return sql, (fts5_query(self.terms), *params, *params, *params, *params)

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        batch, params = compiler.compile(self.source)
        document = POSTGRES_DOCUMENT.format(column="search_image.prompt")
        sql = (
            "EXISTS (SELECT 1 FROM generation_generation AS search_image WHERE search_image.batch_id = "  # noqa: S608
            f"{batch} AND search_image.deleted_at IS NULL AND {document} @@ to_tsquery('simple'::regconfig, %s))"
        )
        return sql, (*params, tsquery(self.terms))


def register_sqlite_functions(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """connection_created handler: the search index's triggers call `imagegen_search_text`."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 1, index_text, deterministic=True)


SQLITE_SCHEMA = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS generation_search USING fts5(body, tokenize = 'unicode61')",
    """CREATE TRIGGER IF NOT EXISTS generation_search_insert AFTER INSERT ON generation_generation BEGIN
        INSERT INTO generation_search(rowid, body) VALUES (new.rowid, imagegen_search_text(new.prompt));
    END""",
    """CREATE TRIGGER IF NOT EXISTS generation_search_delete AFTER DELETE ON generation_generation BEGIN
        DELETE FROM generation_search WHERE rowid = old.rowid;
    END""",
    """CREATE TRIGGER IF NOT EXISTS generation_search_update AFTER UPDATE OF prompt ON generation_generation BEGIN
        UPDATE generation_search SET body = imagegen_search_text(new.prompt) WHERE rowid = old.rowid;
    END""",
]
SQLITE_REFILL = [
    "DELETE FROM generation_search",
    "INSERT INTO generation_search(rowid, body) SELECT rowid, imagegen_search_text(prompt) FROM generation_generation",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS generation_search_insert",
    "DROP TRIGGER IF EXISTS generation_search_delete",
    "DROP TRIGGER IF EXISTS generation_search_update",
    "DROP TABLE IF EXISTS generation_search",
]


def search_index_ensure(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate handler: SQLite drops a table's triggers when a migration rebuilds the table
    (adding a column with a default does), so after any migration the index is rebuilt if they are gone."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        if "generation_generation" not in tables:
            return
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'generation_search_%'")
        (triggers,) = cursor.fetchone()
    if triggers < len(SQLITE_SCHEMA) - 1 or "generation_search" not in tables:
        search_index_rebuild(connection)


def search_index_rebuild(connection: BaseDatabaseWrapper) -> int:
    """Create (or refill) the search index from every prompt; returns the rows indexed.

    SQLite only needs this after a VACUUM, which may renumber rowids; PostgreSQL's index is
    maintained by the database and is only created here.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for statement in [*SQLITE_SCHEMA, *SQLITE_REFILL]:
                cursor.execute(statement)
            return cursor.rowcount
        if connection.vendor == "postgresql":
            document = POSTGRES_DOCUMENT.format(column='"prompt"')
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS {POSTGRES_INDEX} ON "generation_generation" USING gin ({document})'
                f" WITH ({POSTGRES_INDEX_OPTIONS})"
            )
        return 0
