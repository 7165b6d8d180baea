"""Full-text prompt search (generation/search.py) and the query plans of the main lists."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from generation import library as library_services
from generation import selectors
from generation.models import Batch, Generation
from generation.search import (
    SQLITE_DROP,
    BatchPromptMatches,
    PromptMatches,
    fts5_query,
    index_text,
    query_terms,
    search_index_ensure,
    search_index_rebuild,
    tsquery,
)

PROMPTS = ["一隻藍色的貓", "a red fox in the snow", "夕陽下的海邊", "Foxes and cats"]


def test_index_text_makes_every_cjk_character_a_word() -> None:
    assert index_text("一隻Blue貓") == " 一  隻 blue 貓 "


def test_query_terms_split_words_and_cjk_runs_and_drop_punctuation() -> None:
    terms = query_terms('  Red "fox" 藍色、貓 🐱 ')
    assert [t.tokens for t in terms] == [("red",), ("fox",), ("藍", "色"), ("貓",)]
    assert fts5_query(terms) == '"red"* AND "fox"* AND "藍 色" AND "貓"'
    assert tsquery(terms) == "'red':* & 'fox':* & '藍' <-> '色' & '貓'"


def test_a_query_of_only_punctuation_or_quotes_has_no_terms() -> None:
    assert query_terms('"*) - (" 🐱 、。') == []


@pytest.fixture
def library(make_batch: Any, other_user: Any) -> Any:
    mine = make_batch(name="mine", prompts=PROMPTS, run=False)
    make_batch(other_user, name="theirs", prompts=["一隻藍色的貓 too"], run=False)
    return mine


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("貓", {"一隻藍色的貓"}),  # a single CJK character
        ("藍色", {"一隻藍色的貓"}),  # two characters, in order
        ("色藍", set()),  # the same characters in another order are not the phrase
        ("海邊 夕陽", {"夕陽下的海邊"}),
        ("fox", {"a red fox in the snow", "Foxes and cats"}),  # words by prefix, any case
        ("FOX snow", {"a red fox in the snow"}),
        ("dog", set()),
    ],
)
def test_library_search_finds_words_and_cjk_text(library: Any, owner: Any, query: str, expected: set[str]) -> None:
    found = {g.prompt for g in selectors.library_list(user=owner, search=query)}
    assert found == expected


def test_search_never_shows_another_users_images(library: Any, other_user: Any) -> None:
    assert [g.prompt for g in selectors.library_list(user=other_user, search="貓")] == ["一隻藍色的貓 too"]


def test_batch_search_finds_a_batch_by_one_of_its_prompts(library: Any, owner: Any, make_batch: Any) -> None:
    make_batch(name="dogs", prompts=["a dog"], run=False)
    assert [b.name for b in selectors.batch_list(user=owner, search="貓")] == ["mine"]
    assert [b.name for b in selectors.batch_list(user=owner, search="dogs")] == ["dogs"]


def test_the_index_follows_deleted_batches_and_edited_prompts(library: Any, owner: Any) -> None:
    generation = Generation.objects.get(batch=library, prompt="夕陽下的海邊")
    Generation.objects.filter(pk=generation.pk).update(prompt="月光下的森林")
    assert {g.prompt for g in selectors.library_list(user=owner, search="森林")} == {"月光下的森林"}
    assert not list(selectors.library_list(user=owner, search="海邊"))
    library.delete()
    assert not list(selectors.library_list(user=owner, search="fox"))


def test_rebuilding_the_index_keeps_every_prompt_findable(library: Any, owner: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite's index is kept by triggers and may need a rebuild (after VACUUM)")
    search_index_rebuild(connection)
    assert len(list(selectors.library_list(user=owner, search="貓"))) == 1
    out = io.StringIO()
    call_command("search_reindex", stdout=out)
    assert "rebuilt (5 prompts)" in out.getvalue()
    assert len(list(selectors.library_list(user=owner, search="海邊"))) == 1


def every_page(read: Any, **arguments: Any) -> tuple[list[Any], Any]:
    """The ids of every item of a keyset list, reading it page after page, and its last page."""
    seen, cursor = [], ""
    while True:
        page = read(cursor=cursor, **arguments)
        seen += [item.pk for item in page.items]
        if not page.next_cursor:
            return seen, page
        cursor = page.next_cursor


def _plan(queryset: Any) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # With a handful of rows a sequential scan is cheapest; forbid it to see whether an index fits.
            cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def _assert_no_full_scan(plan: str) -> None:
    if connection.vendor == "postgresql":
        assert "Seq Scan on generation_generation" not in plan, plan
        assert "Seq Scan on generation_batch" not in plan, plan
    else:
        for line in plan.splitlines():
            assert not line.strip().endswith(("SCAN generation_generation", "SCAN generation_batch")), plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_the_batch_list_reads_one_index_range(library: Any, owner: Any) -> None:
    plan = _plan(selectors.batch_list(user=owner)[:21])
    _assert_no_full_scan(plan)
    assert "batch_owner_newest" in plan, plan


def test_a_deep_batch_page_starts_inside_the_index(library: Any, owner: Any) -> None:
    from imagegen.pagination import after

    batches = selectors.batch_list(user=owner).filter(after(selectors.BATCH_ORDER, [library.created_at, library.id]))
    plan = _plan(batches[:21])
    _assert_no_full_scan(plan)
    assert "batch_owner_newest" in plan, plan


def test_the_library_reads_a_few_batches_at_a_time_along_the_owners_index(library: Any, owner: Any) -> None:
    from generation.models import Batch

    _assert_no_full_scan(_plan(Batch.objects.filter(owner_id=owner.pk).order_by(*selectors.BATCH_ORDER)[:2]))
    chunk = (
        Generation.objects.filter(batch_id__in=[library.id]).select_related("batch").order_by(*selectors.LIBRARY_ORDER)
    )
    _assert_no_full_scan(_plan(chunk[:21]))


def test_searches_use_the_full_text_index(library: Any, owner: Any) -> None:
    # (With a handful of rows PostgreSQL may rather filter the owner's few images than read the
    # index for the library, so its condition is checked on its own.)
    matches = Generation.objects.filter(PromptMatches(query_terms("貓")))
    for queryset in (matches, selectors.batch_list(user=owner, search="貓")):
        plan = _plan(queryset[:21])
        if connection.vendor == "postgresql":
            assert "generation_prompt_search" in plan, plan
        else:
            assert "VIRTUAL TABLE INDEX" in plan, plan


def test_a_batchs_images_are_read_in_order_from_its_index(library: Any) -> None:
    plan = _plan(selectors.generation_list(batch=library).order_by(*selectors.BATCH_GENERATION_ORDER)[:101])
    _assert_no_full_scan(plan)


def test_a_status_filter_reads_its_own_index(library: Any, owner: Any) -> None:
    plan = _plan(selectors.batch_list(user=owner, status="completed")[:21])
    _assert_no_full_scan(plan)
    # The planner may walk the owner's newest-first index and filter on status instead: on a small
    # table either is cheap; what matters is that no plan scans or sorts every batch.
    assert "batch_owner_status_newest" in plan or "batch_owner_newest" in plan, plan


@pytest.mark.django_db
def test_a_migration_that_dropped_the_sqlite_triggers_gets_the_index_back(library: Any, owner: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's index is maintained by the database")
    with connection.cursor() as cursor:
        for statement in SQLITE_DROP:
            cursor.execute(statement)
    search_index_ensure(sender=None, using="default")
    found = selectors.library_list(user=owner, search="貓")
    assert found.exists()


@pytest.mark.parametrize("size", [1, 2, 20])
@pytest.mark.parametrize("status", ["", "queued"])
def test_a_common_term_finds_the_same_batches_walking_them_as_through_the_index(
    owner: Any, other_user: Any, make_batch: Any, monkeypatch: Any, size: int, status: str
) -> None:
    for number in [0, 2, 4, 6, 1, 3, 5]:  # made first (a run dispatches every waiting batch), then left queued
        prompts = ["一隻貓", "a dog"] if number % 3 else ["a dog"]
        make_batch(name="貓 named" if number in (3, 4) else f"b{number}", prompts=prompts, run=number % 2 == 0)
    make_batch(other_user, name="theirs", prompts=["一隻貓"], run=False)
    expected = [b.pk for b in selectors.batch_list(user=owner, search="貓", status=status)]
    monkeypatch.setattr(selectors, "COMMON_SEARCH_MATCHES", 1)  # every term counts as common
    seen, page = every_page(selectors.batch_page, user=owner, search="貓", status=status, size=size)
    assert seen == expected and expected
    assert page.total is None  # a common term is not counted: that would cost every match again


def test_a_batch_matches_by_its_listed_images_only(owner: Any, make_batch: Any) -> None:
    cats, dogs, gone = (
        make_batch(name=n, prompts=p) for n, p in [("c", ["一隻貓", "x"]), ("d", ["dog"]), ("g", ["貓"])]
    )
    library_services.generations_delete(generations=list(gone.generations.all()))
    found = Batch.objects.filter(BatchPromptMatches(query_terms("貓")), owner_id=owner.pk)
    assert list(found) == [cats]
    assert list(Batch.objects.filter(BatchPromptMatches(query_terms("dog")))) == [dogs]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL GIN index's storage option")
def test_the_postgresql_index_takes_new_prompts_straight_in(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", ["generation_prompt_search"])
        (options,) = cursor.fetchone()
    assert "fastupdate=off" in options
