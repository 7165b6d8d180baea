"""App configuration for generation."""

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = _("Generation")

    def ready(self) -> None:
        from generation.search import register_sqlite_functions, search_index_ensure

        connection_created.connect(register_sqlite_functions, dispatch_uid="generation_search_functions")
        post_migrate.connect(search_index_ensure, sender=self, dispatch_uid="generation_search_ensure")
