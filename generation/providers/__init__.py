"""Registry of image providers: one module each under this package, all of the same shape."""

from __future__ import annotations

from importlib import import_module

from generation.providers.base import Provider

# Adding a provider: copy a sibling module, then name it here.
PROVIDER_MODULES = ["local", "openai", "stability", "automatic1111", "replicate"]


def all_providers() -> dict[str, Provider]:
    modules = (import_module(f"generation.providers.{name}") for name in PROVIDER_MODULES)
    return {module.provider.name: module.provider for module in modules}


def configured_providers(*, user_id: int | None = None) -> dict[str, Provider]:
    """Providers set up by the operator, plus those `user_id` saved their own key for."""
    own_keys = _own_key_providers(user_id)
    return {
        name: provider
        for name, provider in all_providers().items()
        if provider.is_configured() or (provider.accepts_user_key and name in own_keys)
    }


def get_provider(name: str, *, user_id: int | None = None) -> Provider | None:
    """The provider `name` if the operator configured it or `user_id` saved a key for it."""
    provider = all_providers().get(name)
    if provider is None or provider.is_configured():
        return provider
    return provider if provider.accepts_user_key and name in _own_key_providers(user_id) else None


def _own_key_providers(user_id: int | None) -> set[str]:
    if user_id is None:
        return set()
    from generation.models import ProviderKey

    return set(ProviderKey.objects.filter(owner_id=user_id).values_list("provider", flat=True))
