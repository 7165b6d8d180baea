"""Registry of image providers: one module each under this package, all of the same shape."""

from __future__ import annotations

from importlib import import_module

from generation.providers.base import Provider

# Adding a provider: copy a sibling module, then name it here.
PROVIDER_MODULES = ["local"]


def all_providers() -> dict[str, Provider]:
    modules = (import_module(f"generation.providers.{name}") for name in PROVIDER_MODULES)
    return {module.provider.name: module.provider for module in modules}


def configured_providers() -> dict[str, Provider]:
    return {name: provider for name, provider in all_providers().items() if provider.is_configured()}


def get_provider(name: str) -> Provider | None:
    return configured_providers().get(name)
