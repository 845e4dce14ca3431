"""Sign-in with Entra ID: the OpenID Connect authorization code flow with PKCE, run by msal, and the
validation of the id token it returns. No ORM here: the views keep the flow in the session and the
services decide who the person is in the portal.

msal (1.38+) no longer validates id tokens (it still checks ``state`` and the nonce it sent), so
:func:`validate_id_token` does it: the RS256 signature against the tenant's published keys (the
``jwks_uri`` of its OpenID configuration, fetched again once when a token names an unknown key:
Entra rolls its keys), the issuer, the audience, the tenant, the lifetime and the nonce.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
import msal
import requests

from portal.connectors.graph.auth import AppCredentials

CLOCK_SKEW_SECONDS = 120
_KEYS_TTL_SECONDS = 3600


class SignInError(Exception):
    """The sign-in was refused; the message is for the person (never holds a token or a secret)."""


@dataclass(frozen=True)
class Identity:
    """Who signed in, from a validated id token."""

    object_id: str
    tenant_id: str
    username: str
    name: str
    email: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]


def nonce_hash(nonce: str) -> str:
    """What msal sends as ``nonce`` for a flow's raw nonce (and so what the id token carries)."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def validate_id_token(token: str, *, keys: Mapping[str, Any], issuer: str, audience: str, tenant_id: str,
                      nonce: str, now: float | None = None) -> dict[str, Any]:
    """The claims of ``token`` once every check passed; SignInError names the first that failed.

    ``keys`` is a JWKS document (``{"keys": [...]}``); only RS256 is accepted, so neither ``none``
    nor an HMAC keyed with the public key gets through.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignInError("The sign-in answer did not hold a readable id token.") from exc
    if header.get("alg") != "RS256":
        raise SignInError("The id token is not signed with the algorithm Entra ID uses (RS256).")
    jwk = next((k for k in keys.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if jwk is None:
        raise SignInError("The id token is signed with a key the tenant does not publish.")
    try:
        key = jwt.PyJWK(jwk, algorithm="RS256").key
        claims = jwt.decode(
            token, key, algorithms=["RS256"], audience=audience, issuer=issuer, leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "tid", "oid", "nonce"], "verify_iat": False},
        ) if now is None else _decode_at(token, key, audience=audience, issuer=issuer, now=now)
    except jwt.ExpiredSignatureError as exc:
        raise SignInError("The id token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise SignInError("The id token is not valid yet.") from exc
    except jwt.InvalidAudienceError as exc:
        raise SignInError("The id token was issued for another application (audience).") from exc
    except jwt.InvalidIssuerError as exc:
        raise SignInError("The id token was issued by another authority (issuer).") from exc
    except jwt.InvalidSignatureError as exc:
        raise SignInError("The id token's signature is not valid.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise SignInError(f"The id token lacks the {exc.claim!r} claim.") from exc
    except jwt.PyJWTError as exc:
        raise SignInError("The id token is not valid.") from exc
    if str(claims.get("tid", "")).lower() != tenant_id.lower():
        raise SignInError("The id token belongs to another tenant.")
    if claims.get("nonce") != nonce:
        raise SignInError("The id token does not answer this sign-in (nonce mismatch): start again.")
    return claims


def _decode_at(token: str, key: Any, *, audience: str, issuer: str, now: float) -> dict[str, Any]:
    """jwt.decode with the time checks made against ``now`` (tests), the rest as in production."""
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=issuer,
                        options={"require": ["exp", "iat", "iss", "aud", "tid", "oid", "nonce"], "verify_exp": False,
                                 "verify_nbf": False, "verify_iat": False})
    if claims["exp"] < now - CLOCK_SKEW_SECONDS:
        raise jwt.ExpiredSignatureError("expired")
    if claims.get("nbf", now) > now + CLOCK_SKEW_SECONDS:
        raise jwt.ImmatureSignatureError("not yet valid")
    return claims


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    def strings(value: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in value) if isinstance(value, Sequence) and not isinstance(value, str) else ()

    return Identity(
        object_id=str(claims["oid"]).lower(), tenant_id=str(claims["tid"]).lower(),
        username=str(claims.get("preferred_username") or claims["oid"]), name=str(claims.get("name", "")),
        email=str(claims.get("email", "")), roles=strings(claims.get("roles")), groups=strings(claims.get("groups")),
    )


class EntraSignIn:
    """The portal's app registration signing people in. One per process (msal fetches the
    authority's OpenID configuration when it is created; the JWKS is cached here)."""

    def __init__(self, credentials: AppCredentials) -> None:
        self.credentials = credentials
        self._app: msal.ConfidentialClientApplication | None = None
        self._configuration: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {"keys": []}
        self._keys_fetched = 0.0
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the environment's CA bundle would override verify= (lab-cloud.md)
        session.verify = self.credentials.ca_file or True
        if self.credentials.proxy:
            session.proxies = {"https": self.credentials.proxy, "http": self.credentials.proxy}
        return session

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                c = self.credentials
                credential: Any = c.client_secret
                if c.certificate_key:
                    credential = {"private_key": c.certificate_key}
                    if c.certificate_thumbprint:
                        credential["thumbprint"] = c.certificate_thumbprint.replace(":", "").strip()
                    if c.certificate:
                        credential["public_certificate"] = c.certificate
                    if c.certificate_key_passphrase:
                        credential["passphrase"] = c.certificate_key_passphrase
                try:
                    self._app = msal.ConfidentialClientApplication(
                        c.client_id, client_credential=credential, authority=c.authority, instance_discovery=False,
                        http_client=self._session(), timeout=c.timeout, token_cache=msal.TokenCache())
                except (requests.RequestException, OSError, ValueError) as exc:
                    raise SignInError(f"Entra ID cannot be reached right now ({type(exc).__name__}); try again "
                                      "or use a local account.") from None
            return self._app

    def configuration(self) -> dict[str, Any]:
        if self._configuration is None:
            url = f"{self.credentials.authority}/v2.0/.well-known/openid-configuration"
            self._configuration = self._get_json(url)
            if "{tenantid}" in self._configuration.get("issuer", ""):
                raise SignInError("Set ENTRA_TENANT_ID to the tenant's id: sign-in accepts one tenant only.")
        return self._configuration

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._session().get(url, timeout=self.credentials.timeout)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SignInError(f"Entra ID cannot be reached right now ({type(exc).__name__}); try again.") from None

    def keys(self, *, kid: str | None) -> dict[str, Any]:
        known = {k.get("kid") for k in self._keys.get("keys", [])}
        stale = time.monotonic() - self._keys_fetched > _KEYS_TTL_SECONDS
        if stale or (kid not in known and time.monotonic() - self._keys_fetched > 10):
            self._keys = self._get_json(self.configuration()["jwks_uri"])
            self._keys_fetched = time.monotonic()
        return self._keys

    def begin(self, *, redirect_uri: str) -> dict[str, Any]:
        """A new flow (state, nonce, PKCE verifier; keep it server-side) and its ``auth_uri``."""
        # response_mode stays "query": a cross-site form_post would arrive without the SameSite=Lax
        # session cookie that holds this flow. The code in the URL is single-use and PKCE-bound.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
            return self._application().initiate_auth_code_flow(scopes=[], redirect_uri=redirect_uri)

    def complete(self, *, flow: Mapping[str, Any], response: Mapping[str, str]) -> Identity:
        """Redeem the code the authorize endpoint sent back and validate the id token."""
        if response.get("error"):
            description = str(response.get("error_description", ""))[:300]
            raise SignInError(f"Entra ID refused the sign-in: {response['error']}. {description}".strip())
        try:
            result = self._application().acquire_token_by_auth_code_flow(dict(flow), dict(response))
        except ValueError as exc:  # msal: state missing or not the one this flow sent
            raise SignInError("The sign-in answer does not belong to this sign-in (state mismatch): start "
                              "again.") from exc
        except RuntimeError as exc:  # msal: the nonce in the id token is not this flow's
            raise SignInError("The id token does not answer this sign-in (nonce mismatch): start again.") from exc
        except requests.RequestException as exc:
            raise SignInError(f"Entra ID cannot be reached right now ({type(exc).__name__}); try again.") from None
        if "error" in result:
            raise SignInError(f"Entra ID refused the sign-in: {result.get('error')}. "
                              f"{str(result.get('error_description', ''))[:300]}".strip())
        token = result.get("id_token")
        if not token:
            raise SignInError("Entra ID answered without an id token.")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise SignInError("The sign-in answer did not hold a readable id token.") from exc
        issuer = self.configuration()["issuer"]
        claims = validate_id_token(token, keys=self.keys(kid=kid), issuer=issuer, audience=self.credentials.client_id,
                                   tenant_id=issuer.rstrip("/").split("/")[-2], nonce=nonce_hash(flow["nonce"]))
        return identity_from_claims(claims)

    def logout_url(self, *, post_logout_redirect_uri: str) -> str | None:
        try:
            endpoint = self.configuration().get("end_session_endpoint")
        except SignInError:
            return None
        if not endpoint:
            return None
        return str(requests.Request("GET", endpoint, params={
            "post_logout_redirect_uri": post_logout_redirect_uri}).prepare().url)
