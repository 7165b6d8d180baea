"""Batch webhooks: URL checks at submit, the signed batch.finished POST, retries for 24 h, claims and resend."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.webhook_secrets import webhook_secret_rotate, webhook_secret_shown
from generation import services, tasks, webhooks
from generation.models import BatchStatus, WebhookDelivery, WebhookDeliveryStatus
from imagegen.errors import Conflict, ValidationFailed
from tests.fakeserver import Recorded, Reply, fake_server, trickling_server

pytestmark = pytest.mark.django_db


def verify(secret: str, request: Recorded) -> bool:
    """An independent Standard Webhooks check, written from the specification."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = dict(part.split(",", 1) for part in request.headers["webhook-signature"].split(" "))
    return hmac.compare_digest(versions.get("v1", ""), expected)


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with fake_server() as server:
        server.route("POST", "/hook", Reply(204))
        yield server


@pytest.fixture
def quiet_batch(make_batch, receiver):
    """A batch with a webhook whose images are not rendered: tests drive the delivery with their own clock."""
    return make_batch(run=False, webhook_url=f"{receiver.url}/hook")


def claim_and_send(now):
    return [
        webhooks.delivery_send(delivery_id=claim.delivery_id, attempt=claim.attempt, sender="test|1", now=now)
        for claim in webhooks.deliveries_claim(now=now)
    ]


class TestSignature:
    def test_the_specification_test_vector_is_reproduced(self):
        signature = webhooks.sign(
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    def test_a_secret_is_whsec_and_base64_of_32_random_bytes_and_rotating_replaces_it(self, owner):
        first = webhook_secret_rotate(user=owner)
        text = webhook_secret_shown(user=owner)
        assert text is not None and text.startswith("whsec_")
        assert len(base64.b64decode(text.removeprefix("whsec_"))) == 32
        assert first.encrypted_secret.find(text.removeprefix("whsec_")) == -1, "stored encrypted"
        webhook_secret_rotate(user=owner)
        assert webhook_secret_shown(user=owner) != text


class TestFinishedBatch:
    def test_a_finished_batch_posts_its_summary_signed_with_the_owners_secret(self, make_batch, receiver, owner):
        batch = make_batch(webhook_url=f"{receiver.url}/hook", name="夜景")
        assert batch.status == BatchStatus.COMPLETED
        [request] = receiver.requests
        secret = webhook_secret_shown(user=owner)
        assert secret and verify(secret, request)
        assert request.headers["Content-Type"] == "application/json"
        event = request.json()
        assert event["type"] == "batch.finished"
        assert event["data"] == {
            "id": str(batch.pk),
            "name": "夜景",
            "status": "completed",
            "total": 2,
            "completed": 2,
            "failed": 0,
            "cancelled": 0,
            "cost_usd": "0.00000",
            "created_at": batch.created_at.isoformat().replace("+00:00", "Z"),
            "finished_at": batch.finished_at.isoformat().replace("+00:00", "Z"),
            "url": f"/api/v1/batches/{batch.pk}/",
        }
        delivery = WebhookDelivery.objects.get(batch=batch)
        assert request.headers["webhook-id"] == str(delivery.pk)
        assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 204)
        assert delivery.delivered_at is not None

    def test_the_batch_url_uses_site_url(self, make_batch, receiver, settings):
        settings.SITE_URL = "https://imagegen.example.com"
        batch = make_batch(webhook_url=f"{receiver.url}/hook")
        assert receiver.requests[0].json()["data"]["url"] == f"https://imagegen.example.com/api/v1/batches/{batch.pk}/"

    def test_a_cancelled_batch_sends_its_summary_too(self, quiet_batch, receiver):
        services.batch_cancel(batch=quiet_batch)
        delivery = WebhookDelivery.objects.get(batch=quiet_batch)
        assert delivery.payload["data"]["status"] == "cancelled"
        assert delivery.payload["data"]["cancelled"] == 2
        assert claim_and_send(timezone.now()) == ["delivered"]

    def test_a_batch_without_webhook_url_records_no_delivery(self, make_batch):
        make_batch()
        assert not WebhookDelivery.objects.exists()

    def test_a_batch_that_finishes_again_after_a_retry_sends_again(self, quiet_batch, receiver):
        batch = services.batch_cancel(batch=quiet_batch)
        batch = services.batch_retry_failed(batch=batch)
        services.batch_cancel(batch=batch)
        assert WebhookDelivery.objects.filter(batch=quiet_batch).count() == 2

    def test_the_delivery_is_written_with_the_finishing_recount_not_before(self, quiet_batch):
        assert not WebhookDelivery.objects.exists(), "nothing while the batch is open"


def resolving(monkeypatch, name: str, address: str) -> None:
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host == name:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


class TestUrlCheck:
    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/hook",
            "https://localhost/hook",
            "https://[::ffff:10.0.0.1]/hook",
        ],
    )
    def test_private_loopback_link_local_and_metadata_addresses_are_refused(self, url):
        with pytest.raises(ValidationFailed) as caught:
            webhooks.check_webhook_url(url)
        assert caught.value.code == "invalid_webhook_url"
        assert "private" in caught.value.details["webhook_url"][0]

    def test_a_host_name_resolving_to_a_private_address_is_refused(self, monkeypatch):
        resolving(monkeypatch, "intranet.example.com", "10.20.30.40")
        with pytest.raises(ValidationFailed):
            webhooks.check_webhook_url("https://intranet.example.com/hook")

    def test_a_public_https_url_is_accepted(self, monkeypatch):
        resolving(monkeypatch, "hooks.example.com", "93.184.216.34")
        assert webhooks.check_webhook_url(" https://hooks.example.com/in?x=1 ") == "https://hooks.example.com/in?x=1"

    @pytest.mark.parametrize(
        ("url", "words"),
        [
            ("http://hooks.example.com/in", "https"),
            ("ftp://hooks.example.com/in", "https://"),
            ("https:///no-host", "https://"),
            ("https://user:pw@hooks.example.com/in", "password"),
            ("https://hooks.example.com:99999/in", "valid"),
            ("https://hooks.example.com/" + "a" * 2000, "2000"),
        ],
    )
    def test_malformed_http_or_long_urls_are_refused_with_a_reason(self, url, words, monkeypatch):
        resolving(monkeypatch, "hooks.example.com", "93.184.216.34")
        with pytest.raises(ValidationFailed) as caught:
            webhooks.check_webhook_url(url)
        assert words in caught.value.message

    def test_an_allowed_host_may_be_private_and_use_plain_http(self, settings):
        settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        assert webhooks.check_webhook_url("http://127.0.0.1:8000/hook") == "http://127.0.0.1:8000/hook"

    def test_the_batch_request_names_the_field(self):
        with pytest.raises(ValidationFailed) as caught:
            services.check_batch_request(prompts=["a fox"], webhook_url="https://10.0.0.1/")
        assert list(caught.value.details) == ["webhook_url"]

    def test_the_address_is_checked_again_when_sending_and_a_blocked_one_fails_at_once(
        self, quiet_batch, settings, monkeypatch
    ):
        quiet_batch.webhook_url = "https://rebound.example.com/hook"
        quiet_batch.save()
        settings.WEBHOOK_ALLOWED_HOSTS = []
        resolving(monkeypatch, "rebound.example.com", "127.0.0.1")  # DNS changed after the submit
        services.batch_cancel(batch=quiet_batch)
        assert claim_and_send(timezone.now()) == ["failed"]
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == 1
        assert "blocked" in delivery.last_error


class TestRetries:
    def test_redirects_are_not_followed_and_count_as_a_failed_attempt(self, quiet_batch, receiver):
        receiver.route("POST", "/hook", Reply(307, headers={"Location": f"{receiver.url}/elsewhere"}))
        services.batch_cancel(batch=quiet_batch)
        assert claim_and_send(timezone.now()) == ["pending"]
        assert [request.path for request in receiver.requests] == ["/hook"]
        delivery = WebhookDelivery.objects.get()
        assert (delivery.response_code, delivery.last_error) == (307, "HTTP 307")

    def test_backoff_follows_the_schedule_and_gives_up_after_24_hours(self, quiet_batch, receiver):
        receiver.route("POST", "/hook", Reply(500))
        start = timezone.now()
        delivery = webhooks.delivery_create(batch=quiet_batch, now=start)
        now = start
        waits = []
        while True:
            assert claim_and_send(now - timedelta(seconds=1)) == [], "nothing is sent before it is due"
            [outcome] = claim_and_send(now)
            delivery.refresh_from_db()
            if outcome == WebhookDeliveryStatus.FAILED:
                break
            assert delivery.next_attempt_at is not None
            waits.append((delivery.next_attempt_at - now).total_seconds())
            now = delivery.next_attempt_at
        assert waits == [5, 300, 1800, 7200, 18000, 36000, pytest.approx(24 * 3600 - sum(waits[:6]))]
        assert now - start == timedelta(hours=24)
        assert delivery.attempts == 8 == len(receiver.requests)
        assert (delivery.status, delivery.response_code, delivery.next_attempt_at) == ("failed", 500, None)
        assert {request.headers["webhook-id"] for request in receiver.requests} == {str(delivery.pk)}

    def test_a_failed_attempt_is_delivered_by_the_next_one(self, quiet_batch, receiver):
        replies = iter([Reply(500), Reply(200)])
        receiver.route("POST", "/hook", lambda request: next(replies))
        start = timezone.now()
        webhooks.delivery_create(batch=quiet_batch, now=start)
        assert claim_and_send(start) == ["pending"]
        assert claim_and_send(start + timedelta(seconds=5)) == ["delivered"]
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 5
        assert first.headers["webhook-signature"] != second.headers["webhook-signature"]

    def test_a_timeout_is_retried(self, quiet_batch, receiver, settings):
        settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
        receiver.route("POST", "/hook", Reply(200, delay=1.0))
        now = timezone.now()
        webhooks.delivery_create(batch=quiet_batch, now=now)
        assert claim_and_send(now) == ["pending"]
        delivery = WebhookDelivery.objects.get()
        assert delivery.response_code is None
        assert delivery.last_error.startswith("timeout")

    def test_a_receiver_that_trickles_its_answer_is_cut_off_and_retried(self, make_batch, settings):
        settings.WEBHOOK_TIMEOUT_SECONDS = 0.3  # each byte comes within it: only the attempt's deadline ends it
        settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        with trickling_server() as url:
            batch = make_batch(run=False, webhook_url=f"{url}/hook")
            now = timezone.now()
            webhooks.delivery_create(batch=batch, now=now)
            started = time.monotonic()
            assert claim_and_send(now) == ["pending"]
            took = time.monotonic() - started
        delivery = WebhookDelivery.objects.get()
        assert delivery.last_error.startswith("timeout") and delivery.next_attempt_at is not None
        assert webhooks.attempt_seconds() - 0.1 < took < webhooks.claim_seconds()


class TestClaims:
    def test_two_nodes_claiming_at_once_get_each_delivery_once(self, quiet_batch):
        now = timezone.now()
        webhooks.delivery_create(batch=quiet_batch, now=now)
        first = webhooks.deliveries_claim(now=now)
        assert len(first) == 1
        assert webhooks.deliveries_claim(now=now) == []

    def test_a_task_delivered_twice_sends_once(self, quiet_batch, receiver):
        now = timezone.now()
        webhooks.delivery_create(batch=quiet_batch, now=now)
        [claim] = webhooks.deliveries_claim(now=now)
        for sender, outcome in (("node-a|1", "delivered"), ("node-b|2", "skipped")):
            sent = webhooks.delivery_send(delivery_id=claim.delivery_id, attempt=claim.attempt, sender=sender, now=now)
            assert sent == outcome
        assert len(receiver.requests) == 1

    def test_a_claim_whose_worker_died_is_taken_again_after_it_runs_out(self, quiet_batch, receiver):
        now = timezone.now()
        webhooks.delivery_create(batch=quiet_batch, now=now)
        [lost] = webhooks.deliveries_claim(now=now)
        assert webhooks.deliveries_claim(now=now + timedelta(seconds=30)) == []
        later = now + timedelta(seconds=webhooks.claim_seconds() + 1)
        [again] = webhooks.deliveries_claim(now=later)
        assert again.attempt == lost.attempt + 1
        stale = webhooks.delivery_send(delivery_id=lost.delivery_id, attempt=lost.attempt, sender="x|1", now=later)
        assert stale == "skipped"
        fresh = webhooks.delivery_send(delivery_id=again.delivery_id, attempt=again.attempt, sender="y|1", now=later)
        assert fresh == "delivered"
        assert len(receiver.requests) == 1

    def test_the_node_dispatch_claims_and_runs_the_task(self, quiet_batch, receiver, run_queue):
        webhooks.delivery_create(batch=quiet_batch, now=timezone.now())
        with run_queue():
            assert tasks.webhooks_dispatch() == 1
        assert WebhookDelivery.objects.get().status == "delivered"


class TestResend:
    def test_resend_sends_the_same_id_with_a_fresh_timestamp_and_signature(self, make_batch, receiver, run_queue):
        batch = make_batch(webhook_url=f"{receiver.url}/hook")
        delivery = WebhookDelivery.objects.get(batch=batch)
        with run_queue():
            services.webhook_delivery_resend(delivery=delivery)
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(delivery.pk)
        assert first.body == second.body
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 2)

    def test_a_failed_delivery_gets_a_new_24_hour_window(self, quiet_batch, receiver):
        receiver.route("POST", "/hook", Reply(500))
        start = timezone.now() - timedelta(days=2)
        delivery = webhooks.delivery_create(batch=quiet_batch, now=start)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None, attempts=8)
        now = timezone.now()
        webhooks.delivery_rearm(delivery=delivery, now=now)
        assert claim_and_send(now) == ["pending"]
        delivery.refresh_from_db()
        assert delivery.retry_until == now + timedelta(hours=24)
        assert delivery.attempts == 9

    def test_resend_while_an_attempt_is_in_flight_is_a_conflict(self, quiet_batch):
        now = timezone.now()
        delivery = webhooks.delivery_create(batch=quiet_batch, now=now)
        webhooks.deliveries_claim(now=now)
        with pytest.raises(Conflict):
            webhooks.delivery_rearm(delivery=delivery, now=now)


class TestPortal:
    def test_the_new_batch_form_takes_a_webhook_url_and_refuses_a_private_one(self, client, owner, settings):
        client.force_login(owner)
        data = {
            "model": "local:procedural-v1",
            "prompts": "a red fox",
            "size": "512x512",
            "images_per_prompt": "1",
            "webhook_url": "https://192.168.1.10/hook",
        }
        response = client.post(reverse("generation:batch_new"), data)
        assert response.status_code == 200
        assert "private" in response.context["form"].errors["webhook_url"][0]

    def test_the_batch_page_lists_deliveries_and_the_resend_button_sends_again(
        self, client, owner, make_batch, receiver, django_capture_on_commit_callbacks
    ):
        batch = make_batch(webhook_url=f"{receiver.url}/hook")
        delivery = WebhookDelivery.objects.get(batch=batch)
        client.force_login(owner)
        page = client.get(reverse("generation:batch_detail", args=[batch.pk])).content.decode()
        assert reverse("generation:batch_webhook_resend", args=[batch.pk, delivery.pk]) in page
        assert "status-delivered" in page
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("generation:batch_webhook_resend", args=[batch.pk, delivery.pk]))
        assert response.status_code == 302
        assert len(receiver.requests) == 2

    def test_another_users_resend_is_404(self, client, other_user, make_batch, receiver):
        batch = make_batch(webhook_url=f"{receiver.url}/hook")
        delivery = WebhookDelivery.objects.get(batch=batch)
        client.force_login(other_user)
        assert client.post(reverse("generation:batch_webhook_resend", args=[batch.pk, delivery.pk])).status_code == 404

    def test_the_profile_shows_the_secret_and_rotating_needs_confirmation(self, client, owner):
        client.force_login(owner)
        url = reverse("accounts:webhook_secret_rotate")
        client.post(url)
        secret = webhook_secret_shown(user=owner)
        assert secret and secret in client.get(reverse("accounts:profile")).content.decode()
        client.post(url)  # not confirmed
        assert webhook_secret_shown(user=owner) == secret
        client.post(url, {"confirm": "1"})
        assert webhook_secret_shown(user=owner) != secret
        assert client.get(url).status_code == 405


def test_the_event_body_is_compact_json(quiet_batch):
    delivery = webhooks.delivery_create(batch=quiet_batch, now=timezone.now())
    assert json.loads(webhooks.body_of(delivery)) == delivery.payload


def test_staff_see_deliveries_read_only_in_the_admin(client, staff, quiet_batch):
    delivery = webhooks.delivery_create(batch=quiet_batch, now=timezone.now())
    client.force_login(staff)
    assert str(delivery.pk) in client.get(reverse("admin:generation_webhookdelivery_changelist")).content.decode()
    assert client.get(reverse("admin:generation_webhookdelivery_add")).status_code == 403


def endless_answer_server() -> tuple[socket.socket, str]:
    """A receiver that answers 200 and then trickles a body it never finishes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _address = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nstill going")
        threading.Event().wait(5)
        connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def test_the_answer_body_is_never_downloaded(quiet_batch, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    listener, url = endless_answer_server()
    quiet_batch.webhook_url = url
    now = timezone.now()
    webhooks.delivery_create(batch=quiet_batch, now=now)
    started = time.monotonic()
    assert claim_and_send(now) == ["delivered"]
    assert time.monotonic() - started < 1
    listener.close()


def test_an_unexpected_error_backs_off_like_a_failed_attempt(quiet_batch, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("the secret cannot be decrypted")

    monkeypatch.setattr(webhooks, "webhook_secret_ensure", broken)
    now = timezone.now()
    webhooks.delivery_create(batch=quiet_batch, now=now)
    assert claim_and_send(now) == ["pending"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.last_error, delivery.claimed_until) == ("internal error", None)
    assert delivery.next_attempt_at == now + timedelta(seconds=5)
