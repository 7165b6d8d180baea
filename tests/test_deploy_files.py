"""The deployment files parse and agree with the code: compose, workflows, Dependabot, changelog, units."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml
from django.conf import settings

from imagegen import __version__
from tests.test_configuration import variables_read

ROOT = Path(settings.BASE_DIR)


def load(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def test_compose_runs_databases_store_web_and_workers_from_one_configuration():
    compose = load("compose.yaml")
    services = compose["services"]
    assert {"postgres", "redis", "minio", "bucket", "migrate", "web", "worker"} <= set(services)
    web, worker = services["web"], services["worker"]
    assert web["environment"] == worker["environment"] == services["migrate"]["environment"]
    assert web["deploy"]["replicas"] >= 2 and worker["deploy"]["replicas"] >= 2
    assert worker["command"] == ["python", "manage.py", "qcluster"]
    assert web["restart"] == worker["restart"] == "always"
    unknown = set(web["environment"]) - variables_read()
    assert unknown == set(), f"compose sets variables the platform does not read: {unknown}"
    for name in ("migrate", "web", "worker"):
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_the_ci_workflow_runs_ci_run_and_the_audit():
    jobs = load(".github/workflows/ci.yml")["jobs"]
    commands = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "bash .ci/run" in commands["test"]
    assert "python .ci/audit" in commands["audit"]
    assert (ROOT / ".ci" / "audit").stat().st_mode & 0o111


def test_the_release_workflow_builds_the_image_and_attaches_the_changelog():
    workflow = load(".github/workflows/release.yml")
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as true
    text = (ROOT / ".github/workflows/release.yml").read_text()
    assert "docker/build-push-action" in text and "CHANGELOG.md" in text


def test_dependabot_watches_pip_and_the_vendored_npm_assets():
    ecosystems = {update["package-ecosystem"] for update in load(".github/dependabot.yml")["updates"]}
    assert {"pip", "npm"} <= ecosystems
    import json

    chart = json.loads((ROOT / "package.json").read_text())["dependencies"]["chart.js"]
    assert (ROOT / f"monitoring/static/monitoring/vendor/chart-{chart}.umd.min.js").is_file()


def test_the_changelog_has_an_unreleased_section_and_one_for_the_running_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_the_systemd_units_in_the_deployment_guide_restart_always():
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    units = re.findall(r"```ini\n(.*?)```", guide, re.S)
    assert len(units) == 2
    for text in units:
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read_string(text)
        assert unit["Service"]["Restart"] == "always"
        assert unit["Service"]["EnvironmentFile"] == "/etc/imagegen/imagegen.env"
    assert "waitress-serve" in units[0] and "manage.py qcluster" in units[1]
