"""`manage.py search_reindex`: refill the prompt search index (SQLite needs it after a VACUUM)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from generation.search import search_index_rebuild


class Command(BaseCommand):
    help = "Rebuild the full-text index of prompts from the generations table."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            rows = search_index_rebuild(connection)
        self.stdout.write(f"Search index rebuilt ({rows} prompts)." if rows else "Search index in place.")
