"""Token endpoint: username and password in, a bearer token out (shown once, stored hashed)."""

from accounts.models import ApiToken
from tests.conftest import PASSWORD

URL = "/api/v1/auth/token/"


def test_good_credentials_get_a_token_that_works(anon_api, owner):
    response = anon_api.post(URL, {"username": "owner", "password": PASSWORD}, format="json")
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("ig_")
    stored = ApiToken.objects.get()
    assert token.split("_", 2)[2] not in stored.secret_hash  # only a hash is kept
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anon_api.get("/api/v1/batches/").status_code == 200


def test_wrong_password_is_401_in_the_error_shape(anon_api, owner):
    response = anon_api.post(URL, {"username": "owner", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_missing_field_is_400_naming_it(anon_api):
    response = anon_api.post(URL, {"username": "owner"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "password" in error["details"]
    assert "password" in error["message"]


def test_malformed_json_is_a_400_parse_error(anon_api):
    response = anon_api.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_get_is_not_allowed(anon_api):
    response = anon_api.get(URL)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_inactive_user_gets_no_token(anon_api, owner):
    owner.is_active = False
    owner.save()
    assert anon_api.post(URL, {"username": "owner", "password": PASSWORD}, format="json").status_code == 401
