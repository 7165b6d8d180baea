"""A full media disk under a real cluster: answers are spooled, not paid for twice, and stored once there is room."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from generation.models import BatchStatus, GenerationStatus, SpooledResult
from tests.fakeserver import Reply, fake_server
from tests.generation.providerfakes import png_bytes
from tests.integration.cluster import cluster_env, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
IMAGES = 6


def mount(media: Path, size: str) -> bool:
    media.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(media)]).returncode == 0


@pytest.fixture
def tiny_media_disk():
    """MEDIA_ROOT on a 4 KiB tmpfs (root only): every image write runs out of space until it grows."""
    media = Path(django_settings.MEDIA_ROOT)
    if os.geteuid() != 0 or not mount(media, "4k"):
        pytest.skip("needs root to mount a small tmpfs as the media disk")
    (media / "images").mkdir(exist_ok=True)
    (media / "thumbnails").mkdir(exist_ok=True)
    try:
        yield lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(media)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(media)])


def test_a_full_media_disk_costs_no_extra_provider_call(
    make_batch, real_queue, tmp_path: Path, tiny_media_disk, settings
):
    image = base64.b64encode(png_bytes(size=(512, 512))).decode()
    with fake_server() as server:
        server.route("POST", "/v1/images/generations", Reply(200, {"data": [{"b64_json": image}]}))
        settings.OPENAI_API_KEY = "sk-test"
        settings.OPENAI_BASE_URL = f"{server.url}/v1"
        settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
        batch = make_batch(provider="openai", model="dall-e-2", width=512, height=512,
                           prompts=[f"p {n}" for n in range(IMAGES)])  # fmt: skip
        env = cluster_env(
            tmp_path,
            Q_WORKERS="2",
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=f"{server.url}/v1",
            OUTBOUND_ALLOWED_PRIVATE_HOSTS="127.0.0.1",
            STORAGE_INLINE_RETRIES="0",
            GENERATION_RETRY_BASE_SECONDS="0.5",
            GENERATION_RETRY_MAX_SECONDS="2",
        )
        with running_cluster(env, tmp_path / "cluster.log"):
            wait_for(lambda: SpooledResult.objects.filter(generation__batch=batch).count() == IMAGES, timeout=60)
            assert batch.generations.filter(status=GenerationStatus.SUCCEEDED).count() == 0
            files = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
            assert files == [], "no partial file is left on the full disk"
            tiny_media_disk()  # the operator frees space
            wait_for(lambda: batch.refresh_from_db() or batch.status == BatchStatus.COMPLETED, timeout=60)
        calls = len(server.requests)
    assert calls == IMAGES, f"{calls} provider calls for {IMAGES} images"
    assert not SpooledResult.objects.exists()
