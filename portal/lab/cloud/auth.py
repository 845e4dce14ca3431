"""OAuth 2.0 / OpenID Connect: the token endpoint (client secret, HTTP Basic or a signed client
assertion), access-token issue and verification, and Graph's bearer-token check."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .api import ApiError, ApiRequest, ApiResponse
from .errors import graph_error
from .oidc import sign_in_endpoint
from .store.common import utc_now

GRAPH_RESOURCE = "https://graph.microsoft.com"
EXCHANGE_RESOURCE = "https://outlook.office365.com"
# Well-known application ids of the two resources; a scope may name either form.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
_RESOURCES = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    "https://graph.microsoft.com/": GRAPH_RESOURCE,
    EXCHANGE_RESOURCE: EXCHANGE_RESOURCE,
    "https://outlook.office365.com/": EXCHANGE_RESOURCE,
    EXCHANGE_APP_ID: EXCHANGE_RESOURCE,
    "https://outlook.office.com": EXCHANGE_RESOURCE,
}


# --------------------------------------------------------------------------------------------
# tokens


class TokenError(Exception):
    pass


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_access_token(
    *,
    key: bytes,
    tenant_id: str,
    client_id: str,
    audience: str,
    roles: Sequence[str] = (),
    lifetime: int = 3599,
    now: datetime | None = None,
    issuer_host: str = "https://sts.windows.net",
) -> str:
    """An app-only access token in Entra ID's claim layout, signed with the lab's HMAC key.

    Real tokens are RS256-signed; clients never validate access tokens, so HS256 is enough for the
    lab and keeps the key out of any published JWKS. Tests use this to mint expired tokens or
    tokens of another tenant.
    """
    moment = int((now or utc_now()).timestamp())
    header = {"typ": "JWT", "alg": "HS256", "kid": "lab-cloud"}
    claims = {
        "aud": audience, "iss": f"{issuer_host}/{tenant_id}/", "iat": moment, "nbf": moment,
        "exp": moment + lifetime, "aio": "lab", "app_displayname": "lab", "appid": client_id, "appidacr": "1",
        "azp": client_id, "idp": f"{issuer_host}/{tenant_id}/", "idtyp": "app", "oid": client_id, "rh": "lab",
        "roles": list(roles), "sub": client_id, "tid": tenant_id, "uti": _b64url(uuid.uuid4().bytes), "ver": "1.0",
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def verify_access_token(token: str, *, key: bytes, now: datetime | None = None) -> dict[str, Any]:
    """Claims of a lab token; TokenError carries the message Graph gives for that failure."""
    parts = token.split(".")
    if len(parts) != 3:
        # Graph's wording for a token that is not a JWS (IDX14100, from Microsoft.IdentityModel).
        raise TokenError("IDX14100: JWT is not well formed, there are no dots (.).\n"
                         "The token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
                         "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
                         "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext."
                         "EncodedAuthenticationTag'.")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, TypeError) as exc:
        raise TokenError("IDX14102: Unable to decode the header as Base64Url encoded string.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "HS256":
        raise TokenError("IDX10511: Signature validation failed.")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise TokenError("IDX10511: Signature validation failed.")
    moment = (now or utc_now()).timestamp()
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < moment:
        raise TokenError("Lifetime validation failed, the token is expired.")
    if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > moment + 300:
        raise TokenError("Access token has expired or is not yet valid.")
    return claims



class AuthMixin:
    """The login endpoints and Graph's token check; part of ``LabCloud``."""

    def _login_entry(self, req: ApiRequest) -> ApiResponse:
        match = re.fullmatch(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token|"
                             r"discovery/v2\.0/keys|\.well-known/openid-configuration|oauth2/v2\.0/authorize|"
                             r"oauth2/v2\.0/logout)", req.path)
        if not match:
            raise self._not_found_path(req)
        tenant, endpoint = match.groups()
        if not self._is_our_tenant(tenant) and tenant.lower() not in {"organizations", "common"}:
            raise self._aadsts(400, "invalid_request", 90002,
                               f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
                               "are signing into the correct cloud. Check with your subscription administrator, this "
                               "may happen if there are no active subscriptions for the tenant.")
        if endpoint.endswith("openid-configuration"):
            if req.method != "GET":
                raise self._not_found_path(req)
            return ApiResponse(200, self._openid_configuration(req))
        if endpoint.endswith(("keys", "authorize", "logout")):
            return sign_in_endpoint(self.sign_in, req, endpoint, issuer=self._openid_configuration(req)["issuer"])
        if req.method != "POST":
            raise self._aadsts(400, "invalid_request", 900561,
                               "The endpoint only accepts POST requests. Received a GET request.")
        return self._token(req)

    def _is_our_tenant(self, tenant: str) -> bool:
        return tenant.lower() in {self.tenant_id, self.initial_domain}

    def _openid_configuration(self, req: ApiRequest) -> dict[str, Any]:
        base = f"{req.base_url}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{req.base_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
                                 "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def _aadsts(self, status: int, error: str, code: int, description: str) -> ApiError:
        """The token service's error body (error, error_description with AADSTS code and trace
        lines, error_codes, timestamp, trace_id, correlation_id, error_uri)."""
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: "
                                 f"{correlation_id} Timestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": trace_id, "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
        return ApiError(ApiResponse(status, body))

    def _token(self, req: ApiRequest) -> ApiResponse:
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode(errors="replace"),
                                                            keep_blank_values=True).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                client_id = client_id or urllib.parse.unquote(user)
                client_secret = client_secret or urllib.parse.unquote(password)
        if form.get("grant_type") not in {"client_credentials", "authorization_code"}:
            raise self._aadsts(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type "
                               f"'{form.get('grant_type', '')}'. The lab supports client_credentials and "
                               "authorization_code only.")
        if not client_id:
            raise self._aadsts(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'client_id'.")
        app = self.store.get_app(client_id=client_id)
        if app is None:
            raise self._aadsts(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found in the directory "
                               f"'{self.tenant_id}'. This can happen if the application has not been installed by the "
                               "administrator of the tenant or consented to by any user in the tenant. You may have "
                               "sent your authentication request to the wrong tenant.")
        assertion = form.get("client_assertion")
        if assertion:
            self._check_assertion(assertion, form.get("client_assertion_type"), client_id, app, req)
        elif client_secret:
            if not self.store.verify_client_secret(client_id=client_id, client_secret=client_secret):
                raise self._aadsts(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent in the request is "
                                   "the client secret value, not the client secret ID, for a secret added to app "
                                   f"'{client_id}'.")
        else:
            raise self._aadsts(401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.")
        if form.get("grant_type") == "authorization_code":
            return ApiResponse(200, self.sign_in.redeem(form=form, client_id=client_id, lifetime=self.token_lifetime,
                                                        issuer=self._openid_configuration(req)["issuer"]),
                               {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        scope = form.get("scope", "")
        scopes = [s for s in scope.split() if s not in {"openid", "profile", "offline_access", "email"}]
        if not scopes:
            raise self._aadsts(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'scope'.")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise self._aadsts(400, "invalid_scope", 1002012,
                               f"The provided value for scope {scope} is not valid. Client credential flows must have "
                               "a scope value with /.default suffixed to the resource identifier (application ID "
                               "URI).")
        resource = scopes[0][: -len("/.default")]
        audience = _RESOURCES.get(resource) or _RESOURCES.get(resource.rstrip("/"))
        if audience is None:
            raise self._aadsts(400, "invalid_resource", 500011,
                               f"The resource principal named {resource} was not found in the tenant named "
                               f"{self.tenant_id}. This can happen if the application has not been installed by the "
                               "administrator of the tenant or consented to by any user in the tenant. You might have "
                               "sent your authentication request to the wrong tenant.")
        token = issue_access_token(key=self._key, tenant_id=self.tenant_id, client_id=client_id.lower(),
                                   audience=audience, roles=app["roles"], lifetime=self.token_lifetime)
        return ApiResponse(200, {"token_type": "Bearer", "expires_in": self.token_lifetime,
                                 "ext_expires_in": self.token_lifetime, "access_token": token},
                           {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _check_assertion(self, assertion: str, assertion_type: str | None, client_id: str, app: Mapping[str, Any],
                         req: ApiRequest) -> None:
        if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise self._aadsts(400, "invalid_request", 50027,
                               "Invalid JWT token. The client_assertion_type must be "
                               "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.")
        parts = assertion.split(".")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
        except (ValueError, IndexError) as exc:
            raise self._aadsts(400, "invalid_request", 50027, "Invalid JWT token. Token format not valid.") from exc
        if str(claims.get("iss", "")).lower() != client_id.lower() or str(claims.get("sub", "")).lower() != \
                client_id.lower():
            raise self._aadsts(401, "invalid_client", 700023,
                               "Client assertion audience claim does not match Realm issuer, or the iss/sub claims "
                               f"are not the client id '{client_id}'.")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < time.time():
            raise self._aadsts(401, "invalid_client", 700024,
                               "Client assertion is not within its valid time range.")
        if not app["certificates"]:
            raise self._aadsts(401, "invalid_client", 700027,
                               "Client assertion contains an invalid signature. [Reason - The key was not found., "
                               f"Thumbprint of key used by client: '{header.get('x5t', '')}']")
        # Verify with PyJWT (a dependency of msal) against the registered certificates.
        import jwt
        from cryptography import x509

        for pem in app["certificates"]:
            certificate = x509.load_pem_x509_certificate(pem.encode())
            try:
                jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                           options={"verify_aud": False})
                return
            except jwt.PyJWTError:
                continue
        raise self._aadsts(401, "invalid_client", 700027,
                           "Client assertion contains an invalid signature. [Reason - The key used is not registered "
                           f"for the app., Thumbprint of key used by client: '{header.get('x5t', '')}']")

    def _graph_auth(self, req: ApiRequest) -> dict[str, Any]:
        header = req.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                         f'common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'}
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise graph_error(401, "InvalidAuthenticationToken", "Access token is empty.", req, challenge)
        try:
            claims = verify_access_token(header[7:].strip(), key=self._key)
        except TokenError as exc:
            raise graph_error(401, "InvalidAuthenticationToken", str(exc), req, challenge) from exc
        if str(claims.get("tid", "")).lower() != self.tenant_id:
            raise graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.",
                              req, challenge)
        if claims.get("aud") not in {GRAPH_RESOURCE, GRAPH_APP_ID}:
            raise graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.",
                              req, challenge)
        return claims

    def _require(self, req: ApiRequest, *roles: str) -> None:
        granted = set((req.claims or {}).get("roles") or [])
        if not granted.intersection(roles):
            raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.",
                              req)
