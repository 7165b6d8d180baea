"""A real S3 endpoint for tests: moto's server on a free loopback port, with one bucket."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    bucket: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def settings(self) -> dict[str, Any]:
        """Django settings that put default_storage on this bucket (as the environment would)."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_S3_SIGNATURE_VERSION": "s3v4",
            "AWS_DEFAULT_ACL": None,
            "AWS_QUERYSTRING_EXPIRE": 300,
        }

    def environment(self) -> dict[str, str]:
        """The same as environment variables, for the nodes an integration test starts."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def s3_server(bucket: str = "") -> Iterator[ObjectStore]:
    """Start moto's S3 server (a real HTTP endpoint speaking the S3 protocol) and create `bucket`."""
    bucket = bucket or f"imagegen-test-{uuid.uuid4().hex[:12]}"  # moto keeps buckets for the whole process
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        store = ObjectStore(endpoint=f"http://127.0.0.1:{port}", bucket=bucket)
        store.client().create_bucket(Bucket=bucket)
        yield store
    finally:
        server.stop()
