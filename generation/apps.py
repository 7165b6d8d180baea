"""App configuration for generation."""

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = _("Generation")

    def ready(self) -> None:
        from generation.search import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="generation_search_functions")
