"""The one API error shape: every message in the caller's language, UTF-8 as written, with a request id."""


def test_an_anonymous_request_is_refused_in_chinese(anon_api):
    response = anon_api.get("/api/v1/batches/", HTTP_ACCEPT_LANGUAGE="zh-TW")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "未提供身分驗證憑證。"


def test_error_bodies_are_utf8_not_escaped_and_carry_the_request_id(api):
    response = api.post(
        "/api/v1/batches/", {"prompts": ["a"], "width": 500, "height": 500}, format="json", HTTP_ACCEPT_LANGUAGE="zh-TW"
    )
    assert response.status_code == 400
    assert "不提供".encode() in response.content
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


def test_english_callers_get_english(anon_api):
    response = anon_api.get("/api/v1/batches/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["error"]["message"] == "Authentication credentials were not provided."
