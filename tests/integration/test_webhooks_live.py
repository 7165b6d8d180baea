"""A real cluster sends a finished batch's webhook, signed, and delivers it on retry after a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from accounts.webhook_secrets import webhook_secret_shown
from generation.models import Batch, BatchStatus, WebhookDelivery
from tests.fakeserver import Recorded, Reply, fake_server
from tests.integration.cluster import cluster_env, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def signed_correctly(secret: str, request: Recorded) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(request.headers["webhook-signature"], expected)


def test_a_batch_finished_on_a_real_cluster_is_delivered_on_retry(
    make_batch, real_queue, owner, settings, tmp_path: Path
):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with fake_server() as receiver:
        replies = iter([Reply(500), Reply(200)])
        receiver.route("POST", "/hook", lambda request: next(replies, Reply(200)))
        batch = make_batch(prompts=["a red fox", "山水畫"], webhook_url=f"{receiver.url}/hook")
        env = cluster_env(tmp_path, Q_WORKERS="2", WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
        deliveries = WebhookDelivery.objects.filter(batch=batch)
        with running_cluster(env, tmp_path / "cluster.log"):
            wait_for(lambda: deliveries.filter(status="delivered").exists(), timeout=90)
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED
    delivery = deliveries.get()
    assert (delivery.attempts, delivery.response_code, delivery.last_error) == (2, 200, "")
    first, second = receiver.requests
    secret = webhook_secret_shown(user=owner)
    assert secret and signed_correctly(secret, first) and signed_correctly(secret, second)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(delivery.pk)
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) >= 5
    assert second.json()["data"]["status"] == "completed"
