"""Turning what a user pasted into the list of prompts a batch renders."""

from __future__ import annotations

from dynamicprompts.generators import CombinatorialPromptGenerator
from pyparsing import ParseBaseException

from imagegen.errors import ValidationFailed


def split_lines(text: str) -> list[str]:
    """One prompt per non-empty line; surrounding white space and a UTF-8 BOM are dropped."""
    return [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]


def expand_prompts(prompts: list[str], *, template: bool, limit: int) -> list[str]:
    """The prompts to render; with `template`, `{a|b}` alternatives expand into every combination."""
    cleaned = [p.strip() for p in prompts if p and p.strip()]
    if not template:
        return cleaned
    generator = CombinatorialPromptGenerator()
    expanded: list[str] = []
    for line_number, prompt in enumerate(cleaned, start=1):
        try:
            variants = generator.generate(prompt, max_prompts=limit - len(expanded) + 1)
        except ParseBaseException as exc:
            raise ValidationFailed(
                f"Prompt {line_number} is not a valid template: {exc.msg} (at character {exc.loc + 1}).",
                code="invalid_template",
                details={"prompts": [f"line {line_number}: {exc.msg}"]},
            ) from exc
        expanded.extend(str(v).strip() for v in variants if str(v).strip())
        if len(expanded) > limit:
            break
    return expanded
