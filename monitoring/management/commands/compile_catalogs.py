"""`manage.py compile_catalogs`: build .mo translation files from every .po catalogue with polib.

Django's own compilemessages needs GNU gettext installed; polib is pure Python, so a fresh
machine needs nothing beyond requirements.txt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polib
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand


def catalogue_dirs() -> list[Path]:
    """The project's locale folders: the root one (templates/, imagegen/) and one per app."""
    base = Path(settings.BASE_DIR)
    app_dirs = [Path(app.path) / "locale" for app in apps.get_app_configs() if Path(app.path).parent == base]
    return [Path(p) for p in settings.LOCALE_PATHS] + [d for d in app_dirs if d.is_dir()]


class Command(BaseCommand):
    help = "Compile every project .po catalogue into its .mo when the .po is newer."

    def handle(self, *args: Any, **options: Any) -> None:
        for locale_dir in catalogue_dirs():
            for po_path in locale_dir.glob("*/LC_MESSAGES/*.po"):
                mo_path = po_path.with_suffix(".mo")
                if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                    continue
                polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
                self.stdout.write(f"compiled {mo_path.relative_to(settings.BASE_DIR)}")
