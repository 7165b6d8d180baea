"""The provider interface: what every image provider module declares and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
        }


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    width: int
    height: int
    seed: int
    model: str
    negative_prompt: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


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

    def is_configured(self) -> bool: ...

    def models(self) -> list[ModelInfo]: ...

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]: ...
