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
