"""The typed contract of `Batch.parameters`: what the user asked for, written once, read by name.

A batch keeps exactly what was typed (the prompt lines before template expansion included), so it
can be shown, re-run or audited later; the worker reads the same object to build each request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from generation.output import OutputSettings

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
class PromptItem:
    """One imported row (CSV, JSON, JSON Lines or the API's `items`): a prompt and its own settings.

    A setting left out (None) takes the batch's value.
    """

    prompt: str
    negative_prompt: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    images: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PromptItem:
        def number(name: str) -> int | None:
            return None if data.get(name) is None else int(data[name])

        negative = data.get("negative_prompt")
        return cls(
            prompt=str(data.get("prompt") or ""),
            negative_prompt=None if negative is None else str(negative),
            seed=number("seed"),
            width=number("width"),
            height=number("height"),
            images=number("images"),
        )


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
    # Imported rows as read (placeholders filled in); empty when the prompts were typed as lines.
    items: tuple[PromptItem, ...] = ()
    # The image format and compression an OpenAI-compatible client asked for (gateway): "" is the default.
    output_format: str = ""
    output_compression: int | None = None
    # Reuse an identical earlier image (same user, explicit seed) instead of a paid call.
    cache: bool = True
    # Post-processing of each image (generation/output.py); None keeps only the original PNG.
    output: OutputSettings | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fallbacks"] = [asdict(fallback) for fallback in self.fallbacks]
        data["prompt_lines"] = list(self.prompt_lines)
        data["items"] = [item.to_json() for item in self.items]
        data["version"] = SCHEMA_VERSION
        if self.output is None:
            del data["output"]  # batches without post-processing store exactly what they always did
        else:
            data["output"] = self.output.to_json()
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
            items=tuple(PromptItem.from_json(item) for item in data.get("items") or []),
            output_format=str(data.get("output_format") or ""),
            output_compression=None if compression is None else int(compression),
            cache=bool(data.get("cache", True)),
            output=OutputSettings.from_json(data["output"]) if data.get("output") else None,
        )

    def options_for(self, provider_index: int) -> dict[str, Any]:
        """The options on the batch's own provider (index 0) or on its n-th fallback."""
        if provider_index == 0:
            return dict(self.options)
        return dict(self.fallbacks[provider_index - 1].options)

    def fallback(self, provider_index: int) -> Fallback | None:
        """The provider a generation moves to after failing on `provider_index`, if any is left."""
        return self.fallbacks[provider_index] if provider_index < len(self.fallbacks) else None
