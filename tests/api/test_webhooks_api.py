"""Webhook API: the signing secret, a batch's deliveries and resending one, and webhook_url on a new batch."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import WebhookDelivery
from tests.fakeserver import Reply, fake_server

pytestmark = pytest.mark.django_db

SECRET_URL = "/api/v1/webhooks/secret/"


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with fake_server() as server:
        server.route("POST", "/hook", Reply(200))
        yield server


@pytest.fixture
def delivered(make_batch, receiver):
    batch = make_batch(webhook_url=f"{receiver.url}/hook")
    return batch, WebhookDelivery.objects.get(batch=batch)


def deliveries_url(batch_id):
    return f"/api/v1/batches/{batch_id}/webhooks/"


def resend_url(batch_id, delivery_id):
    return f"/api/v1/batches/{batch_id}/webhooks/{delivery_id}/resend/"


class TestSecret:
    def test_no_secret_until_one_is_needed(self, api):
        response = api.get(SECRET_URL)
        assert response.status_code == 200
        assert response.json() == {"secret": None, "created_at": None, "rotated_at": None}

    def test_post_creates_then_rotates_and_get_shows_the_current_one(self, api):
        first = api.post(SECRET_URL)
        assert first.status_code == 200
        assert first.json()["secret"].startswith("whsec_")
        second = api.post(SECRET_URL).json()
        assert second["secret"] != first.json()["secret"]
        assert second["rotated_at"] is not None
        assert api.get(SECRET_URL).json()["secret"] == second["secret"]

    def test_a_batch_with_a_webhook_makes_the_secret(self, api, receiver):
        body = {"prompts": ["a fox"], "webhook_url": f"{receiver.url}/hook"}
        assert api.post("/api/v1/batches/", body, format="json").status_code == 201
        assert api.get(SECRET_URL).json()["secret"].startswith("whsec_")

    def test_each_user_has_their_own(self, api, other_api):
        assert api.post(SECRET_URL).json()["secret"] != other_api.post(SECRET_URL).json()["secret"]

    def test_wrong_method_is_405(self, api):
        assert api.delete(SECRET_URL).status_code == 405
        assert api.put(SECRET_URL, {}).status_code == 405

    def test_anonymous_is_401(self, anon_api):
        assert anon_api.get(SECRET_URL).status_code == 401
        assert anon_api.post(SECRET_URL).status_code == 401


class TestBatchWebhookUrl:
    def test_the_batch_keeps_and_shows_its_webhook_url(self, api, receiver):
        response = api.post("/api/v1/batches/", {"prompts": ["a fox"], "webhook_url": f"{receiver.url}/hook"})
        assert response.status_code == 201
        assert response.json()["webhook_url"] == f"{receiver.url}/hook"

    @pytest.mark.parametrize(
        "url", ["https://169.254.169.254/latest/meta-data/", "http://example.com/hook", "not a url", "https://[::1]/"]
    )
    def test_a_refused_url_is_400_in_the_one_error_shape(self, api, url):
        response = api.post("/api/v1/batches/", {"prompts": ["a fox"], "webhook_url": url}, format="json")
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_webhook_url"
        assert list(error["details"]) == ["webhook_url"]

    def test_a_too_long_url_is_400(self, api):
        url = "https://example.com/" + "a" * 2000
        response = api.post("/api/v1/batches/", {"prompts": ["a fox"], "webhook_url": url}, format="json")
        assert response.status_code == 400
        assert "webhook_url" in response.json()["error"]["details"]


class TestDeliveries:
    def test_the_batch_lists_its_deliveries(self, api, delivered):
        batch, delivery = delivered
        response = api.get(deliveries_url(batch.pk))
        assert response.status_code == 200
        [item] = response.json()
        assert item["id"] == item["webhook_id"] == str(delivery.pk)
        assert (item["status"], item["attempts"], item["response_code"], item["event"]) == (
            "delivered",
            1,
            200,
            "batch.finished",
        )
        assert item["payload"]["data"]["id"] == str(batch.pk)

    def test_a_batch_without_webhook_lists_none(self, api, make_batch):
        assert api.get(deliveries_url(make_batch().pk)).json() == []

    def test_another_users_batch_is_404(self, other_api, delivered):
        batch, _delivery = delivered
        assert other_api.get(deliveries_url(batch.pk)).status_code == 404

    def test_anonymous_is_401(self, anon_api, delivered):
        batch, _delivery = delivered
        assert anon_api.get(deliveries_url(batch.pk)).status_code == 401


class TestResend:
    def test_resend_is_accepted_and_sends_again(self, api, delivered, receiver, run_queue):
        batch, delivery = delivered
        with run_queue():
            response = api.post(resend_url(batch.pk, delivery.pk))
        assert response.status_code == 202
        assert response.json()["id"] == str(delivery.pk)
        assert len(receiver.requests) == 2
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 2)

    def test_a_malformed_delivery_id_is_404(self, api, delivered):
        batch, _delivery = delivered
        assert api.post(f"/api/v1/batches/{batch.pk}/webhooks/not-a-uuid/resend/").status_code == 404

    def test_an_unknown_delivery_or_one_of_another_batch_is_404(self, api, delivered, make_batch, receiver):
        batch, delivery = delivered
        assert api.post(resend_url(batch.pk, uuid.uuid4())).status_code == 404
        sibling = make_batch(webhook_url=f"{receiver.url}/hook")
        response = api.post(resend_url(sibling.pk, delivery.pk))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_a_delivery_being_sent_is_409(self, api, delivered):
        batch, delivery = delivered
        WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() + timedelta(seconds=60))
        response = api.post(resend_url(batch.pk, delivery.pk))
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "webhook_delivery_in_progress"

    def test_wrong_method_is_405(self, api, delivered):
        batch, delivery = delivered
        assert api.get(resend_url(batch.pk, delivery.pk)).status_code == 405

    def test_another_users_delivery_is_404(self, other_api, delivered, receiver):
        batch, delivery = delivered
        assert other_api.post(resend_url(batch.pk, delivery.pk)).status_code == 404
        assert len(receiver.requests) == 1

    def test_anonymous_is_401(self, anon_api, delivered):
        batch, delivery = delivered
        assert anon_api.post(resend_url(batch.pk, delivery.pk)).status_code == 401
