"""`manage.py update_catalogs`: refresh every zh_Hant catalogue from the source (needs GNU gettext).

Each app keeps its own catalogue (<app>/locale/); the root locale/ holds templates/ and imagegen/.
After running it, translate the new empty entries, then `compile_catalogs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

LANGUAGE = "zh_Hant"
IGNORED = [".venv/*", "var/*", "tests/*", "benchmarks/*", "node_modules/*"]


def project_apps() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return [Path(app.path) for app in apps.get_app_configs() if Path(app.path).parent == base]


class Command(BaseCommand):
    help = "Run makemessages for the root catalogue and each app's catalogue."

    def handle(self, *args: Any, **options: Any) -> None:
        base = Path(settings.BASE_DIR)
        app_paths = project_apps()
        start = Path.cwd()
        try:
            os.chdir(base)
            app_ignores = [f"{path.name}/*" for path in app_paths]
            call_command("makemessages", locale=[LANGUAGE], ignore_patterns=IGNORED + app_ignores, no_obsolete=True)
            for path in app_paths:
                (path / "locale").mkdir(exist_ok=True)
                os.chdir(path)
                call_command("makemessages", locale=[LANGUAGE], ignore_patterns=["migrations/*"], no_obsolete=True)
        finally:
            os.chdir(start)
