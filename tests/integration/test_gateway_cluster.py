"""An OpenAI-compatible gateway call waits while a real qcluster's workers make its images."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from generation.models import Batch, BatchSource, GenerationStatus
from tests.integration.cluster import cluster_env, running_cluster

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_gateway_call_waits_for_the_clusters_workers(api, owner, real_queue, settings, tmp_path: Path):
    settings.GATEWAY_TIMEOUT_SECONDS = 60
    env = cluster_env(tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.3")
    with running_cluster(env, tmp_path / "cluster.log"):
        response = api.post("/v1/images/generations", {"prompt": "山水畫", "n": 3, "size": "256x256"}, format="json")
    assert response.status_code == 200, response.content
    images = [base64.b64decode(item["b64_json"]) for item in response.json()["data"]]
    assert [Image.open(io.BytesIO(data)).size for data in images] == [(256, 256)] * 3
    batch = Batch.objects.get(owner=owner)
    assert batch.source == BatchSource.OPENAI_API
    for generation in batch.generations.all():
        assert generation.status == GenerationStatus.SUCCEEDED
        node, _bar, pid = generation.worker.partition("|")
        assert not node.startswith("inline:") and int(pid) != os.getpid(), "made by a cluster worker, not inline"
