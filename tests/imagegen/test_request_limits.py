"""Requests too large, too wide or too deep are refused with the error shape, never a 500."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


def test_deeply_nested_json_is_a_400(anon_api, api):
    body = "[" * 5000 + "]" * 5000
    response = api.generic("POST", "/api/v1/batches/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_json_nested_past_the_depth_limit_is_a_400_even_when_python_parses_it(api):
    body = json.dumps({"prompts": ["a"], "options": json.loads("[" * 40 + "]" * 40)})
    response = api.generic("POST", "/api/v1/batches/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["error"]["message"]


def test_a_body_over_the_memory_limit_is_a_413_with_the_error_shape(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"prompts": ["a" * 2000]})
    response = api.generic("POST", "/api/v1/batches/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_declared_length_over_the_request_limit_is_refused_unread(anon_api, settings):
    settings.MAX_REQUEST_BYTES = 100
    response = anon_api.generic("POST", "/api/v1/auth/token/", "x" * 200, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_on_the_openai_routes_a_body_too_large_is_a_413_in_openais_shape(api, settings):
    settings.MAX_REQUEST_BYTES = 100
    response = api.generic("POST", "/v1/images/generations", "x" * 200, content_type="application/json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error.pop("request_id")  # the platform's one addition
    assert error == {
        "message": "The request body is too large.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }


def test_on_the_openai_routes_a_server_error_page_is_in_openais_shape(rf):
    from imagegen.api import server_error

    response = server_error(rf.post("/v1/images/generations"))
    error = json.loads(response.content)["error"]
    assert response.status_code == 500 and (error["type"], error["code"]) == ("server_error", "server_error")
    platform = json.loads(server_error(rf.post("/api/v1/batches/")).content)["error"]
    assert set(platform) == {"code", "message", "details"}


def test_too_many_form_fields_is_a_400_with_the_error_shape(anon_api):
    body = "&".join(f"f{i}=1" for i in range(1100))
    response = anon_api.generic("POST", "/api/v1/auth/token/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_fields"


def test_too_many_form_fields_on_a_portal_page_is_a_400_page(client):
    body = "&".join(f"f{i}=1" for i in range(1100))
    response = client.generic("POST", "/accounts/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


@pytest.mark.django_db
def test_an_upload_is_stopped_while_it_streams(client, owner, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    client.force_login(owner)
    upload = SimpleUploadedFile("prompts.txt", b"a cat\n" * 1000, content_type="text/plain")
    response = client.post("/batches/new/", {"prompts_file": upload, "name": "x"})
    assert response.status_code == 413


def test_the_web_server_stops_reading_a_body_at_the_same_limit(settings):
    import run

    command = run.web_command(run.Path("python"), "127.0.0.1", 5000, 4)
    assert f"--max-request-body-size={settings.MAX_REQUEST_BYTES}" in command


def test_nul_in_query_parameters_is_taken_out_so_filters_never_fail(api, make_batch):
    make_batch(name="fox")
    response = api.get("/api/v1/batches/?status=%00queued&search=f%00ox")
    assert response.status_code == 200
    library = api.get("/api/v1/generations/?status=succ%00eeded&model=%00")
    assert library.status_code == 200
