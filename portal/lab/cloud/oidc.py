"""The lab's Entra ID sign-in (OpenID Connect): what lets the portal's "Sign in with Microsoft" run
against the lab exactly as against Entra ID.

- ``GET /{tenant}/oauth2/v2.0/authorize``: the lab sign-in page (pick a lab user, type its lab
  password); ``POST`` to it checks the password and redirects to the app's ``redirect_uri`` with
  ``code`` and ``state``, as Entra ID does with ``response_mode=query``.
- ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=authorization_code``: the code exchange
  (client secret, redirect URI, PKCE ``code_verifier``), answering with an RS256-signed v2.0 id
  token (``aud``, ``iss``, ``tid``, ``oid``, ``nonce``, ``roles`` from app-role assignments,
  ``groups``), an access token and ``client_info``.
- ``GET /{tenant}/discovery/v2.0/keys``: the JWKS holding the public half of the signing key.
- ``GET /{tenant}/oauth2/v2.0/logout``: ends the (stateless) lab session and returns to
  ``post_logout_redirect_uri``.

Files in the lab cloud's data directory, both mode 600 and never committed:

- ``id-token-key.pem``: the RSA key id tokens are signed with, generated at the first start;
- ``sign-in.json``: the apps' redirect URIs and app roles, the app-role assignments and the salted
  hashes of the lab users' sign-in passwords, written by the seeder (``configure_app``,
  ``assign_app_role``, ``set_password``).

Codes live in this process's memory for ten minutes and are redeemed once. No Django here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import ApiResponse

SIGNING_KEY_FILE = "id-token-key.pem"
SIGN_IN_FILE = "sign-in.json"
CODE_LIFETIME = 600  # seconds; Entra ID's codes last about ten minutes
ID_TOKEN_LIFETIME = 3600
_LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
_PBKDF2_ROUNDS = 60_000


# --------------------------------------------------------------------------------------------
# files (the seeder writes them from another process; the service reads them at each request)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def read_config(data_dir: Path) -> dict[str, Any]:
    path = Path(data_dir) / SIGN_IN_FILE
    if not path.exists():
        return {"apps": {}, "assignments": {}, "accounts": {}}
    return json.loads(path.read_text())


def _update_config(data_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    config = read_config(data_dir)
    change(config)
    _write_private(Path(data_dir) / SIGN_IN_FILE, json.dumps(config, indent=2, sort_keys=True).encode())


def configure_app(*, data_dir: Path, client_id: str, redirect_uris: Iterable[str], app_roles: Iterable[str],
                  group_claims: bool = True) -> None:
    """Make an app registration a web app that signs users in: its redirect URIs and app roles.

    App role ids are derived from the value, so a second call keeps the ids (and the assignments)."""
    def change(config: dict[str, Any]) -> None:
        config["apps"][client_id.lower()] = {
            "redirect_uris": sorted(set(redirect_uris)),
            "app_roles": {value: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{client_id.lower()}/{value}"))
                          for value in app_roles},
            "group_claims": group_claims,
        }
    _update_config(data_dir, change)


def assign_app_role(*, data_dir: Path, client_id: str, user_id: str, role: str | None) -> None:
    """Give a user one app role of the app (``None`` removes every assignment of the user)."""
    def change(config: dict[str, Any]) -> None:
        app = config["assignments"].setdefault(client_id.lower(), {})
        if role is None:
            app.pop(user_id.lower(), None)
            return
        if role not in config["apps"].get(client_id.lower(), {}).get("app_roles", {}):
            raise ValueError(f"the app has no app role {role!r}")
        app[user_id.lower()] = sorted({*app.get(user_id.lower(), []), role})
    _update_config(data_dir, change)


def unassign_app_role(*, data_dir: Path, client_id: str, user_id: str, role: str) -> None:
    def change(config: dict[str, Any]) -> None:
        app = config["assignments"].setdefault(client_id.lower(), {})
        app[user_id.lower()] = [r for r in app.get(user_id.lower(), []) if r != role]
    _update_config(data_dir, change)


def _hash_password(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), _PBKDF2_ROUNDS).hex()


def set_password(*, data_dir: Path, user_id: str, password: str) -> None:
    """The password a lab user types on the lab sign-in page (only a salted hash is kept)."""
    salt = secrets.token_hex(16)

    def change(config: dict[str, Any]) -> None:
        config["accounts"][user_id.lower()] = {"salt": salt, "hash": _hash_password(password, salt)}
    _update_config(data_dir, change)


def ensure_signing_key(*, data_dir: Path) -> Path:
    """The RSA key id tokens are signed with: made at the lab's first start (mode 600), then reused."""
    path = Path(data_dir) / SIGNING_KEY_FILE
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(number: int) -> str:
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


# --------------------------------------------------------------------------------------------
# the endpoints


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    user_id: str
    nonce: str | None
    challenge: str | None
    challenge_method: str
    scope: str
    expires: float


class LabSignIn:
    """The sign-in endpoints of one lab tenant. ``store`` is the lab's CloudStore (users, groups,
    app secrets); ``aadsts`` builds the token service's error answer (an ApiError to raise)."""

    def __init__(self, *, data_dir: Path, tenant_id: str, store: Any, aadsts: Callable[..., Exception],
                 access_token: Callable[..., str]) -> None:
        from cryptography.hazmat.primitives import serialization

        self.data_dir = Path(data_dir)
        self.tenant_id = tenant_id.lower()
        self.store = store
        self._aadsts = aadsts
        self._access_token = access_token
        pem = ensure_signing_key(data_dir=self.data_dir).read_bytes()
        self._key = serialization.load_pem_private_key(pem, password=None)
        public = self._key.public_key().public_numbers()  # type: ignore[union-attr]
        der = self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64url(hashlib.sha256(der).digest()[:20])
        self._jwk = {"kty": "RSA", "use": "sig", "kid": self.kid, "alg": "RS256", "n": _uint(public.n),
                     "e": _uint(public.e)}
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()

    # -- keys

    def jwks(self, *, issuer: str) -> dict[str, Any]:
        return {"keys": [{**self._jwk, "issuer": issuer}]}

    # -- authorize

    def authorize(self, *, method: str, query: Mapping[str, str], form: Mapping[str, str], base_url: str
                  ) -> tuple[int, str, dict[str, str]]:
        """(status, HTML body, headers): the sign-in page, or the redirect back to the app."""
        params = dict(query) if method == "GET" else {k: v for k, v in form.items() if k not in {"user", "password"}}
        config = read_config(self.data_dir)
        client_id = params.get("client_id", "").lower()
        app = config["apps"].get(client_id)
        if app is None:
            return 400, _error_page("AADSTS700016", f"Application with identifier '{client_id}' was not found in "
                                    f"the directory '{self.tenant_id}'."), {}
        redirect_uri = params.get("redirect_uri", "")
        if not _redirect_allowed(redirect_uri, app["redirect_uris"]):
            # Never redirect to an address the app did not register (AADSTS50011).
            return 400, _error_page("AADSTS50011", f"The redirect URI '{redirect_uri}' specified in the request "
                                    f"does not match the redirect URIs configured for the application "
                                    f"'{client_id}'."), {}
        if params.get("response_type") != "code":
            return self._redirect_error(redirect_uri, params, "unsupported_response_type",
                                        "AADSTS700054: response_type 'code' is the only one the lab supports.")
        challenge = params.get("code_challenge")
        if challenge and params.get("code_challenge_method", "plain") not in {"S256", "plain"}:
            return self._redirect_error(redirect_uri, params, "invalid_request",
                                        "AADSTS501491: Invalid size of Code_Challenge parameter.")
        accounts = self._accounts(config)
        error = ""
        if method == "POST":
            user_id = form.get("user", "").lower()
            account = config["accounts"].get(user_id)
            password = form.get("password", "")
            if account and hmac.compare_digest(account["hash"], _hash_password(password, account["salt"])):
                code = secrets.token_urlsafe(48)
                with self._lock:
                    now = time.time()
                    self._codes = {k: v for k, v in self._codes.items() if v.expires > now}
                    self._codes[code] = _Code(client_id=client_id, redirect_uri=redirect_uri, user_id=user_id,
                                              nonce=params.get("nonce"), challenge=challenge,
                                              challenge_method=params.get("code_challenge_method", "plain"),
                                              scope=params.get("scope", ""), expires=now + CODE_LIFETIME)
                back = {"code": code, "session_state": str(uuid.uuid4())}
                if "state" in params:
                    back["state"] = params["state"]
                return 302, "", {"Location": _with_query(redirect_uri, back), "Cache-Control": "no-store"}
            error = "Your account or password is incorrect. (AADSTS50126: Error validating credentials due to " \
                    "invalid username or password.)"
        return (200 if not error else 400), _sign_in_page(params, accounts, error), {"Cache-Control": "no-store"}

    def _accounts(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        for user_id in config["accounts"]:
            user = self.store.get_object(object_id=user_id, kind="user")
            if user is not None:
                out.append((user_id, f"{user.get('displayName', '')} ({user.get('userPrincipalName', '')})"))
        return sorted(out, key=lambda item: item[1].lower())

    @staticmethod
    def _redirect_error(redirect_uri: str, params: Mapping[str, str], error: str, description: str
                        ) -> tuple[int, str, dict[str, str]]:
        back = {"error": error, "error_description": description}
        if "state" in params:
            back["state"] = params["state"]
        return 302, "", {"Location": _with_query(redirect_uri, back)}

    # -- the code exchange

    def redeem(self, *, form: Mapping[str, str], client_id: str, issuer: str, lifetime: int) -> dict[str, Any]:
        """The token response for ``grant_type=authorization_code`` (the client is already authenticated)."""
        code_value = form.get("code", "")
        with self._lock:
            code = self._codes.pop(code_value, None)  # redeemed once, whatever happens next
        if code is None or code.expires < time.time():
            raise self._aadsts(400, "invalid_grant", 70008,
                               "The provided authorization code or refresh token has expired due to inactivity, "
                               "or was already redeemed. Send a new interactive authorization request for this "
                               "user and resource.")
        if code.client_id != client_id.lower():
            raise self._aadsts(400, "invalid_grant", 70000,
                               "The provided value for the 'code' parameter is not valid. The code was issued to "
                               "another client.")
        if form.get("redirect_uri", "") != code.redirect_uri:
            raise self._aadsts(400, "invalid_grant", 500112,
                               "The reply address does not match the reply address provided when requesting "
                               "the authorization code.")
        if code.challenge:
            verifier = form.get("code_verifier", "")
            computed = _b64url(hashlib.sha256(verifier.encode()).digest()) if code.challenge_method == "S256" \
                else verifier
            if not verifier or not hmac.compare_digest(computed, code.challenge):
                raise self._aadsts(400, "invalid_grant", 501481,
                                   "The Code_Verifier does not match the code_challenge supplied in the "
                                   "authorization request.")
        user = self.store.get_object(object_id=code.user_id, kind="user")
        if user is None or user.get("accountEnabled") is False:
            raise self._aadsts(400, "invalid_grant", 50057, "The user account is disabled.")
        config = read_config(self.data_dir)
        app = config["apps"].get(code.client_id, {})
        roles = config["assignments"].get(code.client_id, {}).get(code.user_id, [])
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": code.client_id, "iss": issuer, "iat": now, "nbf": now, "exp": now + ID_TOKEN_LIFETIME,
            "name": user.get("displayName", ""), "oid": user["id"],
            "preferred_username": user.get("userPrincipalName", ""), "sub": _b64url(hashlib.sha256(
                f"{code.client_id}/{user['id']}".encode()).digest()), "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)), "ver": "2.0",
        }
        if "email" in code.scope.split() and user.get("mail"):
            claims["email"] = user["mail"]
        if code.nonce is not None:
            claims["nonce"] = code.nonce
        if roles:
            claims["roles"] = roles
        if app.get("group_claims"):
            claims["groups"] = self.store.transitive_group_ids_of(member_id=user["id"])
        scope = "openid profile email User.Read"
        return {
            "token_type": "Bearer", "scope": scope, "expires_in": lifetime, "ext_expires_in": lifetime,
            "access_token": self._access_token(user_id=user["id"], client_id=code.client_id),
            "id_token": self.sign(claims),
            "client_info": _b64url(json.dumps({"uid": user["id"], "utid": self.tenant_id}).encode()),
        }

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """An RS256 JWS with the lab's key (tests mint faulty tokens with it)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"typ": "JWT", "alg": "RS256", "kid": kid or self.kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(dict(claims)).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
        return f"{signing_input}.{_b64url(signature)}"

    # -- sign-out

    @staticmethod
    def logout(*, query: Mapping[str, str]) -> tuple[int, str, dict[str, str]]:
        target = query.get("post_logout_redirect_uri", "")
        parsed = urllib.parse.urlsplit(target)
        if parsed.scheme in {"http", "https"} and parsed.netloc:
            return 302, "", {"Location": target}
        return 200, _page("Signed out", "<p>You signed out of your lab account.</p>"), {}


def _redirect_allowed(uri: str, registered: Iterable[str]) -> bool:
    """Exact match, except that for loopback addresses the port is ignored (as Entra ID does for
    native and local development redirects)."""
    if uri in registered:
        return True
    parsed = urllib.parse.urlsplit(uri)
    if parsed.hostname not in _LOOPBACK or parsed.scheme != "http":
        return False
    bare = parsed._replace(netloc=parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]")
    return urllib.parse.urlunsplit(bare) in registered


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    sep = "&" if urllib.parse.urlsplit(uri).query else "?"
    return f"{uri}{sep}{urllib.parse.urlencode(params)}"


_STYLE = ("body{font-family:'Segoe UI',sans-serif;background:#f2f2f2;margin:0}main{max-width:440px;margin:8vh auto;"
          "background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:24px;font-weight:600}"
          "label{display:block;margin-top:16px}select,input{width:100%;padding:6px;margin-top:4px;"
          "box-sizing:border-box}button{margin-top:24px;background:#0067b8;color:#fff;border:0;padding:8px 32px}"
          ".error{color:#e81123}.note{color:#555;font-size:13px}")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>")


def _error_page(code: str, message: str) -> str:
    return _page("Sign in", f"<h1>Sorry, but we're having trouble signing you in.</h1>"
                            f"<p class='error'>{html.escape(code)}: {html.escape(message)}</p>")


def _sign_in_page(params: Mapping[str, str], accounts: list[tuple[str, str]], error: str) -> str:
    hidden = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
                     for k, v in params.items())
    options = "".join(f"<option value='{html.escape(uid)}'>{html.escape(label)}</option>" for uid, label in accounts)
    body = (
        "<h1>Sign in</h1><p class='note'>Rehearsal lab: pick a lab user and type its lab password "
        "(<code>var/lab/cloud/sign-in-accounts.json</code>, printed by <code>manage.py lab seed</code>).</p>"
        + (f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else "")
        + f"<form method='post'>{hidden}<label for='user'>Lab user</label><select id='user' name='user'>{options}"
        "</select><label for='password'>Password</label><input id='password' name='password' type='password' "
        "autocomplete='current-password' required><button type='submit'>Sign in</button></form>"
    )
    return _page("Sign in to your account", body)


def sign_in_endpoint(sign_in: LabSignIn, req: Any, endpoint: str, *, issuer: str) -> ApiResponse:
    """The app's entry for ``keys``, ``authorize`` and ``logout`` (``req`` is its ApiRequest)."""
    if endpoint.endswith("keys"):
        return ApiResponse(200, sign_in.jwks(issuer=issuer))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlencode(req.query)))
    if endpoint.endswith("logout"):
        status, body, headers = sign_in.logout(query=query)
    else:
        form = dict(urllib.parse.parse_qsl(req.body.decode(errors="replace"), keep_blank_values=True)) \
            if req.method == "POST" else {}
        status, body, headers = sign_in.authorize(method=req.method, query=query, form=form, base_url=req.base_url)
    return ApiResponse(status, body or None, headers, content_type="text/html; charset=utf-8" if body else None)
