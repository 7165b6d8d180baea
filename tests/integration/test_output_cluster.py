"""A real qcluster post-processes a batch as it renders it, then re-processes it without the provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from generation import reprocess
from generation.models import Batch, BatchStatus, Generation, OutputJob, Rendition
from generation.renditions import output_job_progress
from tests.integration.cluster import cluster_env, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def formats(batch: Batch) -> list[tuple[str, int, int]]:
    return sorted(Rendition.objects.filter(generation__batch=batch).values_list("format", "width", "height"))


def test_a_cluster_makes_renditions_and_reprocesses_a_batch(make_batch, real_queue, tmp_path: Path):
    output = {"format": "webp", "resize": {"width": 96, "height": 96, "fit": "cover"}}
    batch = make_batch(prompts=["一隻藍色的貓 🐱", "a red fox"], output=output)
    with running_cluster(cluster_env(tmp_path, Q_WORKERS="2"), tmp_path / "cluster.log"):
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED, timeout=60)
        wait_for(lambda: len(formats(batch)) == 2, timeout=30)
        attempts = sorted(Generation.objects.filter(batch=batch).values_list("attempts", flat=True))
        job = reprocess.batch_reprocess(batch=batch, output={"format": "jpeg", "quality": 60})
        wait_for(lambda: output_job_progress(OutputJob.objects.get(pk=job.pk))["status"] == "finished", timeout=60)
    assert formats(batch) == [("jpeg", 512, 512)] * 2 + [("webp", 96, 96)] * 2
    assert output_job_progress(OutputJob.objects.get(pk=job.pk)) == {"done": 2, "failed": 0, "status": "finished"}
    assert sorted(Generation.objects.filter(batch=batch).values_list("attempts", flat=True)) == attempts == [1, 1]
    for rendition in Rendition.objects.filter(generation__batch=batch):
        image = Image.open(default_storage.open(str(rendition.file.name)))
        assert (image.format, image.size) == (
            {"webp": "WEBP", "jpeg": "JPEG"}[rendition.format],
            (rendition.width, rendition.height),
        )
