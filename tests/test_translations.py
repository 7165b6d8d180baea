"""The zh-Hant catalogues are complete, and the interface really switches language."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from monitoring.management.commands.compile_catalogs import catalogue_dirs


def catalogues() -> list[Path]:
    return [po for directory in catalogue_dirs() for po in directory.glob("zh_Hant/LC_MESSAGES/django.po")]


def test_every_app_and_the_root_have_a_chinese_catalogue():
    owners = {str(po.parents[3].relative_to(settings.BASE_DIR)) for po in catalogues()}
    assert owners == {".", "accounts", "generation", "monitoring"}


@pytest.mark.parametrize("po_path", catalogues(), ids=lambda p: str(p.relative_to(settings.BASE_DIR)))
def test_catalogue_is_fully_translated(po_path: Path):
    catalogue = polib.pofile(str(po_path))
    untranslated = [entry.msgid for entry in catalogue.untranslated_entries()]
    fuzzy = [entry.msgid for entry in catalogue.fuzzy_entries()]
    assert untranslated == [], f"untranslated in {po_path}"
    assert fuzzy == [], f"fuzzy in {po_path}"


@pytest.mark.parametrize("po_path", catalogues(), ids=lambda p: str(p.relative_to(settings.BASE_DIR)))
def test_no_entry_is_shadowed_by_another_catalogue(po_path: Path):
    """A msgid that an earlier app (Django, DRF...) also translates shows their words, not ours.

    Give such a string a context (`{% translate "Created" context "..." %}`) or use the same words.
    """
    shadowed = []
    with translation.override("zh-hant"):
        for entry in polib.pofile(str(po_path)).translated_entries():
            if entry.msgid_plural:
                shown = (
                    translation.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 1)
                    if entry.msgctxt
                    else translation.ngettext(entry.msgid, entry.msgid_plural, 1)
                )
                wanted = entry.msgstr_plural[0]
            else:
                shown = (
                    translation.pgettext(entry.msgctxt, entry.msgid)
                    if entry.msgctxt
                    else translation.gettext(entry.msgid)
                )
                wanted = entry.msgstr
            if shown != wanted:
                shadowed.append(f"{entry.msgid!r}: shows {shown!r}, catalogue says {wanted!r}")
    assert shadowed == []


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) is not installed")
def test_catalogues_hold_every_string_in_the_source(tmp_path: Path):
    """Re-extracting the strings adds no msgid that the committed catalogues lack."""
    before = {po: {e.msgid for e in polib.pofile(str(po))} for po in catalogues()}
    copy = tmp_path / "src"
    shutil.copytree(
        settings.BASE_DIR,
        copy,
        ignore=shutil.ignore_patterns(".venv", "var", ".git", "*.mo", "__pycache__", ".*_cache", "test-artifacts"),
    )
    subprocess.run([sys.executable, "manage.py", "update_catalogs"], cwd=copy, check=True, capture_output=True)
    for po, msgids in before.items():
        after = {e.msgid for e in polib.pofile(str(copy / po.relative_to(settings.BASE_DIR)))}
        assert after - msgids == set(), f"strings missing from {po.relative_to(settings.BASE_DIR)}"


def test_login_page_speaks_traditional_chinese(client, db):
    response = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="zh-TW")
    assert response.status_code == 200
    assert "登入" in response.content.decode()


def test_language_switcher_switches_to_english(client, db):
    client.post(reverse("set_language"), {"language": "zh-hant", "next": "/"})
    assert "登入" in client.get(reverse("accounts:login")).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "Log in" in client.get(reverse("accounts:login")).content.decode()
