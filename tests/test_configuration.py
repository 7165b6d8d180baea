"""Every environment variable the code reads is listed in .env.example and documented."""

import os
import re
import subprocess
import sys
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


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, as `manage.py` or the WSGI server would."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "GENERATION_", "PROVIDER_", "REPLICATE_", "STORAGE_", "Q_"))
    }
    environment.update(DJANGO_SETTINGS_MODULE="imagegen.settings", DATA_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_default_timeouts_agree(tmp_path):
    loaded = load_settings(tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]


def test_a_task_timeout_shorter_than_one_attempt_stops_start_up(tmp_path):
    """The issue's case: a 20 s task timeout with a 120 s read timeout killed workers waiting for an answer."""
    loaded = load_settings(tmp_path, GENERATION_TASK_TIMEOUT="20", PROVIDER_READ_TIMEOUT="120")
    assert loaded.returncode != 0
    message = loaded.stderr.strip().splitlines()[-1]
    assert message == (
        "django.core.exceptions.ImproperlyConfigured: GENERATION_TASK_TIMEOUT (20) must be greater than the longest "
        "attempt, PROVIDER_CONNECT_TIMEOUT (10) + PROVIDER_READ_TIMEOUT (120) + REPLICATE_MAX_WAIT_SECONDS (240) "
        "+ STORAGE_INLINE_RETRIES waits (1.5) = 371.5 seconds, or workers are killed while they wait for an answer. "
        "Raise GENERATION_TASK_TIMEOUT above 371.5 or lower those settings."
    )


def test_a_task_timeout_equal_to_one_attempt_is_refused_too(tmp_path):
    loaded = load_settings(
        tmp_path, GENERATION_TASK_TIMEOUT="100", PROVIDER_READ_TIMEOUT="50.5", REPLICATE_MAX_WAIT_SECONDS="38"
    )
    assert loaded.returncode != 0 and "GENERATION_TASK_TIMEOUT (100) must be greater than" in loaded.stderr


def test_shorter_provider_timeouts_allow_a_short_task_timeout(tmp_path):
    loaded = load_settings(
        tmp_path,
        GENERATION_TASK_TIMEOUT="30",
        PROVIDER_CONNECT_TIMEOUT="5",
        PROVIDER_READ_TIMEOUT="10",
        REPLICATE_MAX_WAIT_SECONDS="10",
        STORAGE_INLINE_RETRIES="1",
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]


def test_a_broker_retry_not_longer_than_the_task_timeout_stops_start_up(tmp_path):
    loaded = load_settings(tmp_path, Q_RETRY_MARGIN="0")
    assert loaded.returncode != 0
    assert "must be greater than the task timeout (420)" in loaded.stderr and "Q_RETRY_MARGIN" in loaded.stderr
