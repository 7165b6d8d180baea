"""The provider interface: option checking speaks the user's language."""

from __future__ import annotations

import pytest
from django.utils import translation

from generation.providers.base import Option

STEPS = Option("steps", "Steps", minimum=1, maximum=150, default=25)
QUALITY = Option("quality", "Quality", choices=("low", "high"), default="low")


@pytest.mark.parametrize(
    ("option", "value", "english", "chinese"),
    [
        (STEPS, 500, "a number from 1 to 150", "1 到 150 之間的數字"),
        (STEPS, "many", "a number", "數字"),
        (STEPS, 2.5, "a whole number", "整數"),
        (QUALITY, "ultra", "one of low, high", "下列其中之一：low, high"),
    ],
)
def test_a_rejected_value_says_what_is_accepted_in_the_active_language(option, value, english, chinese):
    with translation.override("en"), pytest.raises(ValueError, match=f"^{english}$"):
        option.check(value)
    with translation.override("zh-hant"), pytest.raises(ValueError, match=f"^{chinese}$"):
        option.check(value)


def test_accepted_values_come_back_clean():
    assert STEPS.check("30") == 30
    assert QUALITY.check("high") == "high"
