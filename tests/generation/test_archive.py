"""ZIP downloads (generation/archive.py): images with manifests, streamed with flat memory."""

from __future__ import annotations

import csv
import io
import json
import os
import tracemalloc
import zipfile
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation import services
from generation.archive import archive_chunks, archive_response, attachment_header
from generation.models import Batch, BatchSource, Generation, GenerationStatus


def _zip(response: Any) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _finish(batch: Batch, *, failed: int = 0, size: int = 64) -> None:
    """Give each image of the batch a stored file (bar the last `failed`, which fail), as the runner would."""
    generations = list(batch.generations.order_by("position"))
    for generation in generations[: len(generations) - failed]:
        name = default_storage.save(f"images/{generation.pk}.png", ContentFile(os.urandom(size)))
        Generation.objects.filter(pk=generation.pk).update(
            image=name, status=GenerationStatus.SUCCEEDED, cost_usd="0.04000"
        )
    for generation in generations[len(generations) - failed :]:
        Generation.objects.filter(pk=generation.pk).update(
            status=GenerationStatus.FAILED, error_code="content_filtered"
        )


def test_the_zip_holds_every_image_and_manifests_that_list_the_failed_ones_without_a_file(make_batch: Any) -> None:
    batch = make_batch(prompts=["a red fox", "一隻藍色的貓 🐱", "a third"], negative_prompt="", seed=7, run=False)
    _finish(batch, failed=1)
    archive = _zip(archive_response(batch.generations.all(), "x.zip"))
    images = [name for name in archive.namelist() if name.startswith("images/")]
    assert len(images) == 2 and archive.namelist()[-2:] == ["manifest.csv", "manifest.json"]
    stored = batch.generations.get(position=0)
    assert archive.read(images[0]) == default_storage.open(stored.image.name).read()
    listed = json.loads(archive.read("manifest.json"))
    assert [row["prompt"] for row in listed] == ["a red fox", "一隻藍色的貓 🐱", "a third"]
    assert (
        listed[0] | {"file": images[0], "seed": 7, "width": 512, "status": "succeeded", "cost_usd": "0.04000"}
        == listed[0]
    )
    assert listed[2]["file"] == "" and listed[2]["status"] == "failed"
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
    assert [row["file"] for row in rows] == [images[0], images[1], ""]
    assert rows[1]["prompt"] == "一隻藍色的貓 🐱" and rows[0]["provider"] == "local"


def test_a_lost_file_does_not_cut_the_download_short(make_batch: Any) -> None:
    batch = make_batch(prompts=["a", "b"], run=False)
    _finish(batch)
    default_storage.delete(batch.generations.get(position=0).image.name)
    archive = _zip(archive_response(batch.generations.all(), "x.zip"))
    assert len(json.loads(archive.read("manifest.json"))) == 2


def test_the_filename_is_safe_and_keeps_chinese_as_rfc_5987() -> None:
    header = attachment_header('貓/狗 "batch"\r\n.zip')
    assert header.startswith('attachment; filename="batch.zip"; ')
    assert "\r" not in header and "\n" not in header and "/" not in header.split("filename*=")[0]
    assert "filename*=UTF-8''%E8%B2%93_%E7%8B%97%20_batch_.zip" in header
    assert attachment_header("貓") == "attachment; filename=\"images.zip\"; filename*=UTF-8''%E8%B2%93.zip"


def test_the_zip_streams_from_object_storage(object_store: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["a", "b", "c"], run=False)
    _finish(batch)
    first, lost = batch.generations.get(position=0), batch.generations.get(position=2)
    default_storage.delete(lost.image.name)
    archive = _zip(archive_response(batch.generations.all(), "x.zip"))
    images = [n for n in archive.namelist() if n.startswith("images/")]
    assert archive.read(images[0]) == default_storage.open(first.image.name).read()
    assert len(json.loads(archive.read("manifest.json"))) == 3


def test_memory_stays_flat_for_a_2000_image_batch(owner: Any, settings: Any) -> None:
    settings.MAX_PROMPTS_PER_BATCH = 2000
    settings.DEFAULT_MAX_IMAGES_PER_BATCH = 2000
    settings.DEFAULT_DAILY_IMAGE_QUOTA = 2000
    spec = services.check_batch_request(prompts=[f"prompt {n}" for n in range(2000)])
    batch = services.batch_create(owner=owner, spec=spec, source=BatchSource.API)
    image_bytes = 16 * 1024
    _finish(batch, size=image_bytes)  # 32 MB of images that do not compress
    sent = 0
    tracemalloc.start()
    try:
        for chunk in archive_chunks(batch.generations.all()):
            sent += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    total = 2000 * image_bytes
    assert sent > total
    assert peak < total / 8, f"peak {peak} bytes while streaming {total} bytes of images"
