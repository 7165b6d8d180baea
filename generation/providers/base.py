"""The provider interface: what every image provider module declares and returns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Option:
    """A provider-specific setting of a model (quality, style, steps...), offered in the form and API."""

    name: str
    label: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = True
    default: Any = None

    def describe(self) -> dict[str, Any]:
        if self.choices:
            return {"label": _(self.label), "type": "choice", "choices": list(self.choices), "default": self.default}
        kind = "integer" if self.integer else "number"
        return {"label": _(self.label), "type": kind, "min": self.minimum, "max": self.maximum, "default": self.default}

    def check(self, value: Any) -> Any:
        """The value in its clean form, or ValueError saying what is accepted."""
        if self.choices:
            if value not in self.choices:
                raise ValueError(_("one of %(choices)s") % {"choices": ", ".join(self.choices)})
            return value
        number = self._number(value)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise ValueError(_("a number from %(min)g to %(max)g") % {"min": self.minimum, "max": self.maximum})
        return number

    def _number(self, value: Any) -> int | float:
        if isinstance(value, bool):
            raise ValueError(_("a number"))
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(_("a number")) from None
        if not math.isfinite(number):  # "inf", "1e999" and "nan" parse as floats
            raise ValueError(_("a number"))
        if self.integer:
            if number != int(number):
                raise ValueError(_("a whole number"))
            return int(number)
        return number


@dataclass(frozen=True)
class ModelInfo:
    """One model of a provider and what it can do."""

    id: str
    label: str
    sizes: tuple[tuple[int, int], ...]
    max_images_per_call: int = 1
    supports_seed: bool = True
    supports_negative_prompt: bool = True
    max_prompt_length: int = 4000
    default_size: tuple[int, int] | None = None
    options: tuple[Option, ...] = ()

    @property
    def default(self) -> tuple[int, int]:
        return self.default_size or self.sizes[0]

    def capabilities(self) -> dict[str, Any]:
        return {
            "sizes": [f"{w}x{h}" for w, h in self.sizes],
            "default_size": "{}x{}".format(*self.default),
            "max_images_per_call": self.max_images_per_call,
            "seed": self.supports_seed,
            "negative_prompt": self.supports_negative_prompt,
            "max_prompt_length": self.max_prompt_length,
            "options": {option.name: option.describe() for option in self.options},
        }

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    width: int
    height: int
    seed: int
    model: str
    negative_prompt: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    # The batch owner's own key for this provider, when they saved one (bring your own key).
    api_key: str = ""
    # Polled by long-running calls (Replicate) so a cancelled batch stops work upstream too.
    is_cancelled: Callable[[], bool] = field(default=lambda: False, compare=False)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.parameters.get("options") or {})


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    seed: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A provider failure, typed so the queue knows whether another attempt can help."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.status_code = status_code


class Provider(Protocol):
    """The shape every module under generation/providers/ has (see local.py)."""

    name: str
    label: str
    description: str
    offline: bool
    # Whether a user may save their own API key for it (bring your own key).
    accepts_user_key: bool

    def is_configured(self) -> bool: ...

    def models(self) -> list[ModelInfo]: ...

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]: ...
