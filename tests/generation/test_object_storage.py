"""Images, thumbnails and downloads on an S3-compatible object store (moto's S3 server)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from monitoring import health
from monitoring.backup import backup_create

pytestmark = pytest.mark.django_db


def test_a_rendered_batch_writes_its_images_and_thumbnails_to_the_bucket(object_store: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["紅色夕陽下的海邊 🌅", "a red fox"])
    names = [name for g in batch.generations.all() for name in (g.image.name, g.thumbnail.name)]
    assert sorted(names) == object_store.keys()
    assert all(name.startswith(("images/", "thumbnails/")) for name in names)


def test_downloads_stream_from_the_bucket_after_the_ownership_check(
    object_store: Any, make_batch: Any, api: Any, other_api: Any
) -> None:
    generation = make_batch(prompts=["a red fox"]).generations.get()
    stored = object_store.client().get_object(Bucket=object_store.bucket, Key=generation.image.name)["Body"].read()
    response = api.get(f"/api/v1/generations/{generation.pk}/image/?download=1")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == stored
    assert "attachment" in response["Content-Disposition"]
    thumbnail = api.get(f"/api/v1/generations/{generation.pk}/thumbnail/")
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"
    assert other_api.get(f"/api/v1/generations/{generation.pk}/image/").status_code == 404


def test_a_file_missing_from_the_bucket_is_a_404_not_a_500(object_store: Any, make_batch: Any, api: Any) -> None:
    generation = make_batch(prompts=["a red fox"]).generations.get()
    object_store.client().delete_object(Bucket=object_store.bucket, Key=generation.image.name)
    response = api.get(f"/api/v1/generations/{generation.pk}/image/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_presigned_downloads_redirect_to_a_short_lived_url_only_for_the_owner(
    object_store: Any, make_batch: Any, api: Any, other_api: Any, settings: Any
) -> None:
    settings.STORAGE_PRESIGNED_URLS = True
    generation = make_batch(prompts=["a red fox"]).generations.get()
    response = api.get(f"/api/v1/generations/{generation.pk}/image/?download=1")
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    url = response["Location"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{object_store.endpoint}/{object_store.bucket}/{generation.image.name}")
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["content-disposition"].startswith("attachment;")
    assert other_api.get(f"/api/v1/generations/{generation.pk}/image/").status_code == 404
    unsigned = httpx.get(url.split("?")[0])
    assert unsigned.status_code == 403  # the bucket itself is private


def test_readiness_checks_the_bucket(object_store: Any, client: Client, monkeypatch: Any, settings: Any) -> None:
    monkeypatch.setitem(health.CHECKS, "workers", lambda: "1 cluster(s)")
    body = client.get("/health/ready").json()
    assert body["checks"]["storage"]["status"] == "ok"
    assert f"s3://{object_store.bucket}" in body["checks"]["storage"]["detail"]
    assert object_store.keys() == []  # the probe file is deleted again
    settings.AWS_STORAGE_BUCKET_NAME = "no-such-bucket"
    settings.STORAGES = {**settings.STORAGES}  # storages are built once per settings change
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json()["failing"] == ["storage"]
    assert "NoSuchBucket" in response.json()["checks"]["storage"]["detail"]


def test_a_backup_leaves_the_objects_in_the_store_and_says_so(
    object_store: Any, make_batch: Any, tmp_path: Path
) -> None:
    make_batch(prompts=["a red fox"])
    archive = backup_create(destination=tmp_path / "backups", keep=2)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = tar.extractfile("manifest.json").read().decode()  # type: ignore[union-attr]
    assert not any(name.startswith("media") for name in names)
    assert '"media_in_archive": false' in manifest and f"s3://{object_store.bucket}" in manifest
    assert default_storage.exists(object_store.keys()[0])
