"""The typed contract of `Batch.parameters`: what the user asked for, written once, read by name.

A batch keeps exactly what was typed (the prompt lines before template expansion included), so it
can be shown, re-run or audited later; the worker reads the same object to build each request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Fallback:
    """A provider to move to when the batch's own one keeps failing with transient errors."""

    provider: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fallback:
        return cls(provider=str(data["provider"]), model=str(data["model"]), options=dict(data.get("options") or {}))


@dataclass(frozen=True)
class BatchParameters:
    width: int
    height: int
    negative_prompt: str = ""
    images_per_prompt: int = 1
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fallbacks: tuple[Fallback, ...] = ()
    # As typed: one entry per prompt line, before any template expansion.
    prompt_lines: tuple[str, ...] = ()
    template: bool = False
    # The image format and compression an OpenAI-compatible client asked for (gateway): "" is the default.
    output_format: str = ""
    output_compression: int | None = None
    # Reuse an identical earlier image (same user, explicit seed) instead of a paid call.
    cache: bool = True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fallbacks"] = [asdict(fallback) for fallback in self.fallbacks]
        data["prompt_lines"] = list(self.prompt_lines)
        data["version"] = SCHEMA_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchParameters:
        """Read stored parameters; rows written before version 2 lack the typed prompt lines."""
        seed, compression = data.get("seed"), data.get("output_compression")
        return cls(
            width=int(data.get("width") or 0),
            height=int(data.get("height") or 0),
            negative_prompt=str(data.get("negative_prompt") or ""),
            images_per_prompt=int(data.get("images_per_prompt") or 1),
            seed=None if seed is None else int(seed),
            options=dict(data.get("options") or {}),
            fallbacks=tuple(Fallback.from_json(item) for item in data.get("fallbacks") or []),
            prompt_lines=tuple(str(line) for line in data.get("prompt_lines") or []),
            template=bool(data.get("template", False)),
            output_format=str(data.get("output_format") or ""),
            output_compression=None if compression is None else int(compression),
            cache=bool(data.get("cache", True)),
        )

    def options_for(self, provider_index: int) -> dict[str, Any]:
        """The options on the batch's own provider (index 0) or on its n-th fallback."""
        if provider_index == 0:
            return dict(self.options)
        return dict(self.fallbacks[provider_index - 1].options)

    def fallback(self, provider_index: int) -> Fallback | None:
        """The provider a generation moves to after failing on `provider_index`, if any is left."""
        return self.fallbacks[provider_index] if provider_index < len(self.fallbacks) else None
