"""Sign-in with Entra ID on the portal side: every id-token fault refused, app roles mapped to portal
roles at each sign-in (a removed one removed), the callback's state handling, the no-role page, the
periodic re-check and local accounts switched off. The whole flow against the lab runs in chromium
(tests/e2e/test_entra_sign_in.py)."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model

from portal.accounts import oidc
from portal.accounts.middleware import ENTRA_SESSION_KEY
from portal.accounts.oidc import Identity, SignInError, validate_id_token
from portal.accounts.services import SignInRefused, do_sign_in_with_entra
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ISSUER = f"https://login.example.test/{TENANT}/v2.0"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "use": "sig"}]}


def _token(key=KEY, kid="k1", alg="RS256", **changes):
    now = int(time.time())
    claims = {"aud": CLIENT, "iss": ISSUER, "tid": TENANT, "oid": "0b1d", "nonce": "n-1", "iat": now, "nbf": now,
              "exp": now + 3600, "preferred_username": "ada@contoso.test", "name": "Ada Lovelace",
              "roles": ["DirOps.Helpdesk"]}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _validate(token, nonce="n-1"):
    return validate_id_token(token, keys=JWKS, issuer=ISSUER, audience=CLIENT, tenant_id=TENANT, nonce=nonce)


def test_a_valid_id_token_passes():
    assert _validate(_token())["oid"] == "0b1d"


@pytest.mark.parametrize("token,message", [
    (lambda: _token(key=OTHER_KEY), "signature is not valid"),  # forged: right kid, wrong key
    (lambda: _token(kid="unknown"), "key the tenant does not publish"),
    (lambda: _token(alg="HS256", key="a-shared-secret-of-32-bytes-or-more"), "RS256"),
    (lambda: jwt.encode({"aud": CLIENT}, None, algorithm="none"), "RS256"),
    (lambda: _token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), "expired"),
    (lambda: _token(nbf=int(time.time()) + 3600), "not valid yet"),
    (lambda: _token(aud="another-app"), "another application"),
    (lambda: _token(iss="https://login.example.test/other/v2.0"), "another authority"),
    (lambda: _token(tid="99999999-0000-0000-0000-000000000000"), "another tenant"),
    (lambda: _token(nonce="n-of-an-earlier-sign-in"), "nonce mismatch"),  # a replayed token
    (lambda: _token(nonce=None), "'nonce'"),
    (lambda: "not.a-token", "readable id token"),
], ids=["forged", "unknown-key", "hmac", "alg-none", "expired", "not-yet-valid", "audience", "issuer", "tenant",
        "replayed-nonce", "no-nonce", "garbage"])
def test_each_token_fault_is_refused(token, message):
    with pytest.raises(SignInError, match=message):
        _validate(token())


def _identity(roles=("DirOps.Helpdesk",), groups=(), oid="0b1d", upn="ada@contoso.test"):
    return Identity(object_id=oid, tenant_id=TENANT, username=upn, name="Ada Lovelace", email="ada@contoso.test",
                    roles=tuple(roles), groups=tuple(groups))


def _roles(user):
    return sorted(user.groups.values_list("name", flat=True))


def test_first_sign_in_creates_the_account_with_mapped_roles_and_no_password(make_user):
    user = do_sign_in_with_entra(identity=_identity(roles=("DirOps.Helpdesk", "DirOps.Auditor", "Unknown.Role")))
    assert _roles(user) == ["Auditor", "Helpdesk"]
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    assert user.entra_identity.object_id == "0b1d" and user.first_name == "Ada"


def test_a_removed_app_role_is_removed_at_the_next_sign_in_and_audited(make_user):
    do_sign_in_with_entra(identity=_identity(roles=("DirOps.Administrator", "DirOps.Approver")))
    user = do_sign_in_with_entra(identity=_identity(roles=("DirOps.Approver",), upn="ada.renamed@contoso.test"))
    assert _roles(user) == ["Approver"]
    assert user.username == "ada@contoso.test", "the link is the object id, not the changing UPN"
    removed = AuditEvent.objects.filter(action="account.roles.removed", target="user:ada@contoso.test").get()
    assert removed.after["roles"] == ["Administrator"]


def test_group_claims_map_to_roles_when_configured(make_user, settings):
    settings.ENTRA_GROUP_ROLE_MAP = {"6F0C-GROUP": "Auditor"}
    user = do_sign_in_with_entra(identity=_identity(roles=(), groups=("6f0c-group", "other")))
    assert _roles(user) == ["Auditor"]


def test_an_existing_local_account_is_never_taken_over(make_user):
    make_user("ada@contoso.test", "Administrator")
    with pytest.raises(SignInRefused, match="already exists and is not linked"):
        do_sign_in_with_entra(identity=_identity())


def test_a_disabled_portal_account_is_refused(make_user):
    user = do_sign_in_with_entra(identity=_identity())
    user.is_active = False
    user.save()
    with pytest.raises(SignInRefused, match="disabled"):
        do_sign_in_with_entra(identity=_identity())


class FakeEntra:
    """Stands in for portal.accounts.oidc.EntraSignIn (msal and the network): the views' side."""

    def __init__(self, identity=None, error=None):
        self.identity, self.error, self.flows = identity, error, []

    def begin(self, *, redirect_uri):
        flow = {"auth_uri": "https://login.example.test/authorize?state=s", "state": "s", "nonce": "n",
                "redirect_uri": redirect_uri}
        self.flows.append(flow)
        return flow

    def complete(self, *, flow, response):
        if self.error:
            raise SignInError(self.error)
        assert flow == self.flows[-1]
        return self.identity

    def logout_url(self, *, post_logout_redirect_uri):
        return f"https://login.example.test/logout?post_logout_redirect_uri={post_logout_redirect_uri}"


@pytest.fixture
def entra(monkeypatch, settings, make_user):
    settings.ENTRA_SIGN_IN = True
    fake = FakeEntra(identity=_identity())
    monkeypatch.setattr("portal.connectors.registry.entra_sign_in", lambda: fake)
    return fake


def _sign_in(client, **query):
    start = client.get("/login/microsoft/", {"next": "/jobs/"})
    assert start.status_code == 302 and start["Location"].startswith("https://login.example.test/authorize")
    return client.get("/login/microsoft/callback/", {"code": "c", "state": "s", **query})


def test_login_page_offers_sign_in_with_microsoft(client, entra):
    page = client.get("/login/").content.decode()
    assert "Sign in with Microsoft" in page and 'name="password"' in page


def test_callback_signs_in_and_goes_where_the_person_was_going(client, entra):
    answer = _sign_in(client)
    assert answer.status_code == 302 and answer["Location"] == "/jobs/"
    assert client.get("/jobs/").status_code == 200
    login = AuditEvent.objects.get(action="auth.login")
    assert login.detail == {"method": "entra"}


def test_a_replayed_callback_finds_no_sign_in_waiting(client, entra):
    _sign_in(client)
    client.post("/logout/")
    replay = client.get("/login/microsoft/callback/", {"code": "c", "state": "s"})
    assert replay.status_code == 400 and "start again" in replay.content.decode()
    assert client.get("/jobs/").status_code == 302, "still signed out"


def test_a_refused_token_signs_nobody_in(client, entra):
    entra.error = "The id token belongs to another tenant."
    answer = _sign_in(client)
    assert answer.status_code == 403 and "another tenant" in answer.content.decode()
    assert not get_user_model().objects.filter(username="ada@contoso.test").exists()


def test_no_app_role_shows_what_to_ask_for_and_nothing_else(client, entra):
    entra.identity = _identity(roles=())
    answer = _sign_in(client)
    assert answer["Location"] == "/"
    page = client.get("/").content.decode()
    assert "holds no role" in page and "DirOps.Helpdesk" in page and "DirOps.Auditor" in page
    assert "Running now" not in page
    assert client.get("/jobs/").status_code == 403


def test_an_old_session_signs_in_again_so_removed_roles_take_effect(client, entra, settings):
    _sign_in(client)
    session = client.session
    session[ENTRA_SESSION_KEY] = time.time() - settings.ENTRA_ROLE_RECHECK_SECONDS - 1
    session.save()
    answer = client.get("/jobs/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/?next=")
    assert "sign in again, so that your roles are checked" in client.get("/login/").content.decode()


def test_sign_out_offers_the_microsoft_sign_out(client, entra):
    _sign_in(client)
    page = client.post("/logout/").content.decode()
    assert "signed out of the portal" in page and "https://login.example.test/logout?" in page


def test_local_accounts_switched_off(client, make_user, settings, entra):
    make_user("breakglass", "Administrator", password="pw-for-tests-only-1")
    client.post("/login/", {"username": "breakglass", "password": "pw-for-tests-only-1"})
    assert client.get("/jobs/").status_code == 200
    settings.LOCAL_ACCOUNTS_ENABLED = False
    assert client.get("/jobs/").status_code == 302, "a local session ends when local accounts are switched off"
    page = client.get("/login/").content.decode()
    assert "Sign in with Microsoft" in page and 'name="password"' not in page
    refused = client.post("/login/", {"username": "breakglass", "password": "pw-for-tests-only-1"})
    assert refused.status_code == 403 and "switched off" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_unconfigured_sign_in_is_explained(client, settings, monkeypatch):
    settings.ENTRA_SIGN_IN = True

    def unconfigured():
        from portal.connectors.registry import NotConfigured
        raise NotConfigured("The Microsoft cloud is not configured: set ENTRA_TENANT_ID (see README).")

    monkeypatch.setattr("portal.connectors.registry.entra_sign_in", unconfigured)
    answer = client.get("/login/microsoft/")
    assert answer.status_code == 503 and "ENTRA_TENANT_ID" in answer.content.decode()


def test_nonce_hash_is_what_msal_sends():
    from msal.oauth2cli.oidc import _nonce_hash

    assert oidc.nonce_hash("abc") == _nonce_hash("abc")
