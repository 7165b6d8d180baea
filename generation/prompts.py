"""Turning what a user pasted into the list of prompts a batch renders, within a fixed work budget."""

from __future__ import annotations

import re
import time
from typing import Any

from django.utils.translation import gettext as _
from dynamicprompts.generators import CombinatorialPromptGenerator
from pyparsing import ParseBaseException

from imagegen.errors import ValidationFailed

# Parsing a template costs time that grows faster than its length (500 empty groups took ~1 s,
# 4 000 groups overflowed the stack), so every template is measured against these limits before
# the parser sees it; what passes them parses in well under 0.1 s per prompt.
TEMPLATE_MAX_CHARS = 100_000  # all template prompts of one request together
TEMPLATE_MAX_GROUPS = 64  # `{...}` groups in one prompt
TEMPLATE_MAX_ALTERNATIVES = 256  # `|` separators in one prompt
TEMPLATE_MAX_DEPTH = 8  # groups inside groups
TEMPLATE_MAX_GROUPS_TOTAL = 1_000  # groups in all prompts of one request
TEMPLATE_TIME_BUDGET_SECONDS = 2.0  # wall time for expanding one request, checked after each prompt
# `__name__` reads a wildcard file; this platform has none, and the generator would repeat the
# prompt unchanged up to the batch limit, so a wildcard (usually a typo) is refused by name.
WILDCARD = re.compile(r"__([^_\s][^\s]*?)__")


def split_lines(text: str) -> list[str]:
    """One prompt per non-empty line; surrounding white space and a UTF-8 BOM are dropped."""
    return [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]


def expand_prompts(prompts: list[str], *, template: bool, limit: int) -> list[str]:
    """The prompts to render; with `template`, `{a|b}` alternatives expand into every combination.

    More than `limit` raw prompts are refused before anything is expanded; expansion stops just past
    `limit` results so the caller can refuse with its own message.
    """
    cleaned = [p.strip() for p in prompts if p and p.strip()]
    if len(cleaned) > limit:
        message = _("A batch holds at most %(limit)d prompts.") % {"limit": limit}
        raise ValidationFailed(message, code="too_many_prompts", details={"prompts": [message]})
    if not template:
        return cleaned
    return [prompt for variants in expand_each(cleaned, limit=limit) for prompt in variants]


def expand_each(prompts: list[str], *, limit: int) -> list[list[str]]:
    """Each template prompt's variants, in order, within the budgets; stops just past `limit` in all."""
    check_template_budget(prompts)
    return _expand(prompts, limit=limit)


def check_template_budget(prompts: list[str]) -> None:
    """Refuse templates too large or too deep to expand cheaply, before any parsing."""
    total = sum(len(p) for p in prompts)
    if total > TEMPLATE_MAX_CHARS:
        _too_complex(_("Templates may have at most %(max)d characters in all.") % {"max": TEMPLATE_MAX_CHARS})
    groups_total = 0
    for line_number, prompt in enumerate(prompts, start=1):
        groups = prompt.count("{")
        groups_total += groups
        if groups > TEMPLATE_MAX_GROUPS:
            _too_complex(
                _("Prompt %(line)d has more than %(max)d {…} groups.")
                % {"line": line_number, "max": TEMPLATE_MAX_GROUPS}
            )
        if prompt.count("|") > TEMPLATE_MAX_ALTERNATIVES:
            message = _("Prompt %(line)d has more than %(max)d alternatives.")
            _too_complex(message % {"line": line_number, "max": TEMPLATE_MAX_ALTERNATIVES})
        if _nesting_depth(prompt) > TEMPLATE_MAX_DEPTH:
            message = _("Prompt %(line)d nests {…} groups more than %(max)d deep.")
            _too_complex(message % {"line": line_number, "max": TEMPLATE_MAX_DEPTH})
    if groups_total > TEMPLATE_MAX_GROUPS_TOTAL:
        message = _("Templates may have at most %(max)d {…} groups in all.")
        _too_complex(message % {"max": TEMPLATE_MAX_GROUPS_TOTAL})


def _nesting_depth(prompt: str) -> int:
    depth = deepest = 0
    for char in prompt:
        if char == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif char == "}":
            depth = max(0, depth - 1)
    return deepest


def _too_complex(message: str) -> None:
    raise ValidationFailed(message, code="template_too_complex", details={"prompts": [message]})


def _expand(prompts: list[str], *, limit: int) -> list[list[str]]:
    generator = CombinatorialPromptGenerator()
    expanded: list[list[str]] = []
    count = 0
    deadline = time.monotonic() + TEMPLATE_TIME_BUDGET_SECONDS
    for line_number, prompt in enumerate(prompts, start=1):
        _refuse_wildcards(prompt, line_number)
        variants = _generate(generator, prompt, line_number, max_prompts=limit - count + 1)
        expanded.append([str(v).strip() for v in variants if str(v).strip()])
        count += len(expanded[-1])
        if count > limit:
            break
        if time.monotonic() > deadline:
            message = _("These templates take too long to expand; split them into smaller batches.")
            _too_complex(message)
    return expanded


def _refuse_wildcards(prompt: str, line_number: int) -> None:
    wildcard = WILDCARD.search(prompt)
    if wildcard is None:
        return
    message = _(
        "Prompt %(line)d uses the wildcard %(wildcard)s, but there are no wildcard files here. "
        "Write the choices out as {a|b|c}."
    ) % {"line": line_number, "wildcard": wildcard.group(0)}
    raise ValidationFailed(message, code="unknown_wildcard", details={"prompts": [message]})


def _generate(generator: CombinatorialPromptGenerator, prompt: str, line_number: int, *, max_prompts: int) -> Any:
    try:
        return generator.generate(prompt, max_prompts=max_prompts)
    except ParseBaseException as exc:
        # The parser's own wording is English only; say what is wrong and where, in the user's language.
        message = _(
            "Prompt %(line)d is not a valid template near character %(at)d: every { needs its }, "
            "with the choices separated by |."
        ) % {"line": line_number, "at": exc.loc + 1}
        raise ValidationFailed(message, code="invalid_template", details={"prompts": [message]}) from exc
    except RecursionError as exc:
        message = _("Prompt %(line)d is not a valid template: it nests too deeply.") % {"line": line_number}
        raise ValidationFailed(message, code="invalid_template", details={"prompts": [message]}) from exc
