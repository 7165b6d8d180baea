"""Estimated cost of one generation, from the price table in settings.PROVIDER_PRICES.

Keys go from specific to general: `provider:model:quality:WxH`, `provider:model:quality`,
`provider:model:WxH`, `provider:model`, `provider`. Where the provider reports token usage
and the table has `provider:model:input_token` / `:output_token` prices, tokens win.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from generation.providers import all_providers


def cost_estimate(
    *, provider: str, model: str, width: int, height: int, quality: str = "", usage: dict[str, Any] | None = None
) -> Decimal | None:
    """The estimated price in USD, or None when the table knows nothing about this provider.

    No quality chosen means the model's default quality (DALL·E 3 renders `standard`), priced as such.
    """
    prices: dict[str, Any] = settings.PROVIDER_PRICES
    by_tokens = _token_cost(prices, f"{provider}:{model}", usage or {})
    if by_tokens is not None:
        return by_tokens
    size = f"{width}x{height}"
    quality = quality or default_quality(provider=provider, model=model)
    for key in _keys(provider, model, quality, size):
        if key in prices:
            return Decimal(str(prices[key])).quantize(Decimal("0.00001"))
    return None


def default_quality(*, provider: str, model: str) -> str:
    """The quality a model renders when none is chosen ("" when it has no quality setting)."""
    known = all_providers().get(provider)
    info = next((m for m in known.models() if m.id == model), None) if known else None
    option = info.option("quality") if info else None
    return str(option.default or "") if option else ""


def _keys(provider: str, model: str, quality: str, size: str) -> list[str]:
    keys = [f"{provider}:{model}:{quality}:{size}", f"{provider}:{model}:{quality}"] if quality else []
    return [*keys, f"{provider}:{model}:{size}", f"{provider}:{model}", provider]


def _token_cost(prices: dict[str, Any], prefix: str, usage: dict[str, Any]) -> Decimal | None:
    input_price, output_price = prices.get(f"{prefix}:input_token"), prices.get(f"{prefix}:output_token")
    tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
    if None in (input_price, output_price) or not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        return None
    total = Decimal(str(input_price)) * tokens_in + Decimal(str(output_price)) * tokens_out
    return total.quantize(Decimal("0.00001"))
