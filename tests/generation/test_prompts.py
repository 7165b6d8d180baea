"""Prompt splitting and template expansion."""

import pytest

from generation.prompts import expand_prompts, split_lines
from imagegen.errors import ValidationFailed


def test_split_lines_keeps_chinese_and_emoji_and_drops_blank_lines():
    text = "\ufeff一隻貓 🐱\r\n\r\n  a dog  \n\n"
    assert split_lines(text) == ["一隻貓 🐱", "a dog"]


def test_expansion_is_off_unless_asked():
    assert expand_prompts(["{a|b}"], template=False, limit=10) == ["{a|b}"]


def test_expansion_covers_every_combination_in_order():
    assert expand_prompts(["{晴天|雨天} {城市|海邊}"], template=True, limit=10) == [
        "晴天 城市",
        "晴天 海邊",
        "雨天 城市",
        "雨天 海邊",
    ]


def test_expansion_stops_just_past_the_limit_so_the_caller_can_refuse():
    assert len(expand_prompts(["{a|b|c|d|e|f|g|h|i|j} {1|2|3|4|5|6|7|8|9|0}"], template=True, limit=5)) == 6


def test_a_broken_template_names_its_line():
    with pytest.raises(ValidationFailed) as caught:
        expand_prompts(["fine", "a {broken"], template=True, limit=10)
    assert "Prompt 2" in caught.value.message


@pytest.mark.parametrize(
    "prompts",
    [
        ["{ }" * 500] * 60,  # the reported 51 s of CPU: too many groups, refused before parsing
        ["{a|b}" * 4000],  # the reported RecursionError
        ["{" + "|".join(["a"] * 300) + "}"],  # too many alternatives
        ["{" * 20 + "a" + "}" * 20],  # too deep
        ["{a|b} " * 40] * 30,  # too many groups in all
        ["x" * 20_000] * 6,  # too many characters in all
    ],
    ids=["empty-groups", "recursion", "alternatives", "depth", "groups-in-all", "characters"],
)
def test_templates_over_budget_are_refused_before_parsing(prompts, monkeypatch):
    from dynamicprompts.generators import CombinatorialPromptGenerator

    def must_not_parse(*args, **kwargs):
        raise AssertionError("the parser ran on a template over budget")

    monkeypatch.setattr(CombinatorialPromptGenerator, "generate", must_not_parse)
    with pytest.raises(ValidationFailed) as caught:
        expand_prompts(prompts, template=True, limit=1000)
    assert caught.value.code == "template_too_complex"
    assert caught.value.details["prompts"]


def test_more_raw_prompts_than_a_batch_holds_are_refused_before_expansion(monkeypatch):
    from generation import prompts as module

    monkeypatch.setattr(module, "_expand", lambda *a, **k: pytest.fail("expanded"))
    with pytest.raises(ValidationFailed) as caught:
        expand_prompts(["{a|b}"] * 11, template=True, limit=10)
    assert caught.value.code == "too_many_prompts"


def test_a_recursion_error_in_the_parser_is_an_invalid_template(monkeypatch):
    from dynamicprompts.generators import CombinatorialPromptGenerator

    def overflow(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(CombinatorialPromptGenerator, "generate", overflow)
    with pytest.raises(ValidationFailed) as caught:
        expand_prompts(["{a|b}"], template=True, limit=10)
    assert caught.value.code == "invalid_template"


def test_expansion_stops_when_its_time_budget_is_spent(monkeypatch):
    from generation import prompts as module

    clock = iter(range(0, 1000, 5))  # every reading of the clock is five seconds later
    monkeypatch.setattr(module.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(ValidationFailed) as caught:
        expand_prompts(["{a|b}", "{c|d}", "{e|f}"], template=True, limit=100)
    assert caught.value.code == "template_too_complex"
