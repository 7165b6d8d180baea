"""Every environment variable the code reads is listed in .env.example and documented."""

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
READ = re.compile(r'env(?:\.[a-z_]+)?\(\s*f?"([A-Z0-9_]+)"')


def variables_read() -> set[str]:
    sources = [ROOT / "imagegen" / "settings.py", *ROOT.glob("*/[!_]*.py"), *ROOT.glob("*/providers/*.py")]
    return {name for path in sources for name in READ.findall(path.read_text())}


def test_settings_read_the_environment():
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= variables_read()


@pytest.mark.parametrize("name", sorted(variables_read()))
def test_variable_is_in_env_example_and_the_docs(name):
    assert name in (ROOT / ".env.example").read_text()
    documented = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert name in documented
