"""The lab cloud's OpenID Connect sign-in, served in-process (Starlette's test client, no server):
the authorize page, the code exchange with PKCE, and id tokens the portal's validation accepts."""

import base64
import hashlib
import urllib.parse
import uuid
import warnings

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2, which the lock does not hold; httpx works
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from portal.accounts.oidc import SignInError, validate_id_token
from portal.lab.cloud import oidc
from portal.lab.cloud.app import create_app

TENANT = str(uuid.uuid4())
CLIENT = str(uuid.uuid4())
SECRET = "lab~test-secret"
REDIRECT = "http://127.0.0.1/login/microsoft/callback/"


@pytest.fixture
def lab(tmp_path):
    app = create_app(data_dir=tmp_path, tenant_id=TENANT, public_base_url="https://lab.test")
    store = app.state.cloud.store
    store.register_app(client_id=CLIENT, client_secret=SECRET)
    user = store.create_user(user_principal_name="ada@contoso.test", display_name="Ada Lovelace",
                             on_premises_sync_enabled=True)
    oidc.configure_app(data_dir=tmp_path, client_id=CLIENT, redirect_uris=[REDIRECT],
                       app_roles=["DirOps.Helpdesk", "DirOps.Auditor"])
    oidc.set_password(data_dir=tmp_path, user_id=user["id"], password="lab-pw-1")
    oidc.assign_app_role(data_dir=tmp_path, client_id=CLIENT, user_id=user["id"], role="DirOps.Helpdesk")
    with TestClient(app, base_url="https://lab.test") as client:
        yield client, user, tmp_path


def _authorize(client, user_id, *, password="lab-pw-1", redirect="http://127.0.0.1:8123/login/microsoft/callback/",
               verifier="v" * 50, nonce="n-1"):
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"client_id": CLIENT, "response_type": "code", "redirect_uri": redirect, "scope": "openid profile",
              "state": "s-1", "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"}
    page = client.get(f"/{TENANT}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200 and "Ada Lovelace (ada@contoso.test)" in page.text
    answer = client.post(f"/{TENANT}/oauth2/v2.0/authorize", data={**params, "user": user_id, "password": password},
                         follow_redirects=False)
    return answer, redirect


def _redeem(client, code, redirect, verifier="v" * 50):
    return client.post(f"/{TENANT}/oauth2/v2.0/token", data={
        "client_id": CLIENT, "client_secret": SECRET, "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect, "code_verifier": verifier, "scope": "openid profile offline_access"})


def test_code_flow_gives_an_id_token_signed_with_the_published_key(lab):
    client, user, _ = lab
    answer, redirect = _authorize(client, user["id"])
    assert answer.status_code == 302
    location = urllib.parse.urlsplit(answer.headers["location"])
    assert location.netloc == "127.0.0.1:8123", "loopback redirect URIs match whatever the port"
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["state"] == "s-1"
    tokens = _redeem(client, query["code"], redirect).json()
    config = client.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()
    assert config["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
    keys = client.get(urllib.parse.urlsplit(config["jwks_uri"]).path).json()
    claims = validate_id_token(tokens["id_token"], keys=keys, issuer=config["issuer"], audience=CLIENT,
                               tenant_id=TENANT, nonce="n-1")
    assert claims["oid"] == user["id"] and claims["roles"] == ["DirOps.Helpdesk"]
    assert claims["preferred_username"] == "ada@contoso.test" and claims["tid"] == TENANT
    # The code is redeemed once only.
    again = _redeem(client, query["code"], redirect)
    assert again.status_code == 400 and "AADSTS70008" in again.json()["error_description"]


def test_wrong_lab_password_stays_on_the_page(lab):
    client, user, _ = lab
    answer, _ = _authorize(client, user["id"], password="not-it")
    assert answer.status_code == 400 and "AADSTS50126" in answer.text and "location" not in answer.headers


def test_pkce_verifier_and_redirect_uri_must_match(lab):
    client, user, _ = lab
    answer, redirect = _authorize(client, user["id"])
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))["code"]
    wrong = _redeem(client, code, redirect, verifier="w" * 50)
    assert wrong.status_code == 400 and "AADSTS501481" in wrong.json()["error_description"]
    answer, redirect = _authorize(client, user["id"])
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))["code"]
    moved = _redeem(client, code, "http://127.0.0.1:9/elsewhere/")
    assert moved.status_code == 400 and "AADSTS500112" in moved.json()["error_description"]


def test_unregistered_redirect_uri_is_never_followed(lab):
    client, _user, _ = lab
    page = client.get(f"/{TENANT}/oauth2/v2.0/authorize", params={
        "client_id": CLIENT, "response_type": "code", "redirect_uri": "https://evil.test/cb", "state": "x"},
        follow_redirects=False)
    assert page.status_code == 400 and "AADSTS50011" in page.text and "location" not in page.headers


def test_signing_key_file_is_private(lab):
    _client, _user, data_dir = lab
    for name in (oidc.SIGNING_KEY_FILE, oidc.SIGN_IN_FILE):
        assert (data_dir / name).stat().st_mode & 0o077 == 0, name


def test_a_token_signed_by_another_key_is_refused(lab):
    client, user, data_dir = lab
    config = client.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()
    keys = client.get(urllib.parse.urlsplit(config["jwks_uri"]).path).json()
    other_dir = data_dir / "other"
    other_dir.mkdir()
    forger = oidc.LabSignIn(data_dir=other_dir, tenant_id=TENANT, store=None, aadsts=None, access_token=None)
    real = client.app.state.cloud.sign_in
    forged = forger.sign({"aud": CLIENT, "iss": config["issuer"], "tid": TENANT, "oid": user["id"], "nonce": "n",
                          "iat": 1, "exp": 2 ** 40}, kid=real.kid)
    with pytest.raises(SignInError, match="signature"):
        validate_id_token(forged, keys=keys, issuer=config["issuer"], audience=CLIENT, tenant_id=TENANT, nonce="n")
