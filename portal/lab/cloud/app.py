"""The lab cloud service: one ASGI application answering as the Microsoft cloud does, so that the
portal's real client code (msal, msgraph-sdk, the Exchange ``InvokeCommand`` call, a pypsrp-shaped
PowerShell client) runs against it unchanged.

Endpoints (``{tenant}`` is the tenant id or its initial domain):

- OAuth 2.0 (Entra ID): ``GET /{tenant}/v2.0/.well-known/openid-configuration``,
  ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with a secret, HTTP Basic or a signed
  client assertion; and ``authorization_code`` with PKCE), ``GET /{tenant}/discovery/v2.0/keys`` (the id
  tokens' JWKS), ``/{tenant}/oauth2/v2.0/authorize`` (the lab sign-in page) and ``/logout`` (``oidc.py``).
- Microsoft Graph ``/v1.0`` and ``/beta``: users, groups, contacts, members, transitive members,
  memberOf, ``$batch``, authentication methods, ``reports/authenticationMethods/userRegistrationDetails``,
  ``auditLogs/directoryAudits``, ``organization``, ``{users|groups|contacts}/{id}/onPremisesSyncBehavior``
  (source of authority; ``Group-OnPremisesSyncBehavior.ReadWrite.All`` and its user/contact siblings);
  the query options ``$select``, ``$filter``,
  ``$top``, ``$count``, ``$orderby`` and ``$skiptoken`` paging with absolute ``@odata.nextLink``.
- Exchange Online: ``POST /adminapi/beta/{tenant}/InvokeCommand`` with the cmdlets the portal uses.
- PowerShell-shaped: ``POST /powershell/entra-connect`` (ADSync cmdlets) and
  ``POST /powershell/exchange-onprem`` (handed to an injected runner), body
  ``{"cmdlet": ..., "parameters": {...}}``, answer ``{"output": [...], "errors": [...], "warnings": [...]}``
  -- one pypsrp ``PowerShell`` invocation each, with its output and error streams.

Error bodies follow what each service returns (Graph's ``{"error": {"code", "message",
"innerError"}}``, the token service's AADSTS errors, Exchange's ``details`` carrying
``<id>|<exception type>|<message>``). Each shape's source is named where it is built; where the
real text could not be confirmed the comment says so.

Request handling is synchronous code run in Starlette's thread pool: SQLite calls block, and one
process with a few threads is what the lab needs. No Django here.

Layout: this module composes the service; each API surface lives in a module of its own.

- ``api`` (ApiRequest, ApiResponse, ApiError), ``errors`` (graph_error, ExchangeError, PowerShell
  error records), ``auth`` (token endpoint, token issue/verify), ``odata`` ($filter parser, Graph
  query options and paging), ``graph_schema`` (Graph object shapes); Exchange -Filter is the
  lab's one OPATH parser, ``portal/lab/opath.py``;
- one mixin per surface, composed into ``LabCloud`` below: ``graph_directory`` (users, groups,
  members, contacts), ``graph_auth_methods``, ``graph_reports`` (registration report, audit log),
  ``graph_conditional_access`` (policies, authentication strengths, security defaults, directory roles,
  sign-ins),
  ``exchange`` (InvokeCommand cmdlets), ``connect`` (Entra Connect and on-premises PowerShell);
- the tenant's data: ``store`` (a package split the same way).

Adding an API surface (say conditional access policies):

1. write ``graph_<surface>.py`` with a ``Graph<Surface>Mixin`` class whose handlers take
   ``(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse`` and use the shared helpers
   (``self._require`` for roles, ``self._collection``/``self._top``/``self._filter`` for lists,
   ``graph_error`` for failures, ``self._audit`` for writes);
2. add the mixin to ``LabCloud``'s bases and its routes to ``LabCloud._graph_routes`` (the one
   routing table for Graph; a new non-Graph endpoint family gets a branch in ``LabCloud.handle``);
3. its tables and store methods go in ``store/<surface>.py`` as a mixin of ``CloudStore``.

A new Exchange cmdlet is a ``cmd_*`` method on ``ExchangeMixin`` plus a row in ``exchange._EXCHANGE_CMDLETS``;
an ADSync cmdlet likewise in ``connect``. Login-side endpoints (OIDC sign-in) extend the path table in
``AuthMixin._login_entry``; a sub-resource of users or groups (onPremisesSyncBehavior) is a route here
and a handler in ``graph_directory``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import ApiError, ApiRequest, ApiResponse, OnPremRunner, SyncRunner, _Route, encode_json
from .auth import GRAPH_RESOURCE, AuthMixin, issue_access_token
from .connect import ConnectMixin
from .errors import _ps_error, _request_ids, graph_error
from .exchange import ExchangeMixin
from .graph_auth_methods import GraphAuthMethodsMixin
from .graph_conditional_access import GraphConditionalAccessMixin
from .graph_directory import GraphDirectoryMixin
from .graph_reports import GraphReportsMixin
from .odata import GraphQueryMixin
from .oidc import LabSignIn
from .store import CloudStore
from .store.common import utc_now

MAX_BATCH = 20


class LabCloud(AuthMixin, GraphQueryMixin, GraphDirectoryMixin, GraphAuthMethodsMixin, GraphReportsMixin,
               GraphConditionalAccessMixin, ExchangeMixin, ConnectMixin):
    """Holds the store and answers requests; ``create_app`` wraps it in Starlette."""

    def __init__(
        self,
        *,
        data_dir: Path,
        tenant_id: str,
        initial_domain: str,
        sync_runner: SyncRunner | None,
        onprem_runner: OnPremRunner | None,
        public_base_url: str | None,
        token_lifetime: int,
        sync_in_background: bool,
    ) -> None:
        self.store = CloudStore.open(data_dir=data_dir)
        self.store.set_tenant(tenant_id=tenant_id, initial_domain=initial_domain)
        self.store.abandon_running_sync_runs()
        self.tenant_id = tenant_id.lower()
        self.initial_domain = initial_domain.lower()
        self.sync_runner = sync_runner
        self.onprem_runner = onprem_runner
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.token_lifetime = token_lifetime
        self.sync_in_background = sync_in_background
        self._key = self.store.signing_key()
        self.sign_in = LabSignIn(  # OpenID Connect sign-in (oidc.py): authorize page, code exchange, JWKS
            data_dir=data_dir, tenant_id=tenant_id, store=self.store, aadsts=self._aadsts,
            access_token=lambda user_id, client_id: issue_access_token(
                key=self._key, tenant_id=self.tenant_id, client_id=client_id, audience=GRAPH_RESOURCE,
                lifetime=self.token_lifetime))
        self._sync_threads: list[threading.Thread] = []
        self.graph_routes = self._graph_routes()

    # -- entry point

    def handle(self, req: ApiRequest) -> ApiResponse:
        if self.public_base_url:
            req.base_url = self.public_base_url
        path = req.path
        try:
            if path.startswith(("/v1.0/", "/beta/")) or path in {"/v1.0", "/beta"}:
                return self._graph_entry(req)
            if path.startswith("/adminapi/"):
                return self._exchange_entry(req)
            if path.startswith("/powershell/"):
                return self._powershell_entry(req)
            if path == "/lab/health":
                return ApiResponse(200, {"status": "ok", "tenantId": self.tenant_id})
            return self._login_entry(req)
        except ApiError as error:
            return error.response

    # -- faults

    def _apply_faults(self, service: str, req: ApiRequest) -> None:
        fault = self.store.take_fault(service=service)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.status is None:
            return
        headers = {"Retry-After": str(fault.retry_after)}
        if service == "graph":
            if fault.status == 429:
                # Graph's throttling answer (learn.microsoft.com, "Microsoft Graph throttling guidance").
                request_id, client_id = _request_ids(req)
                body = {"error": {"code": "TooManyRequests", "message": "Please retry again later.", "innerError": {
                    "code": "429", "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"), "message": "Please retry after",
                    "request-id": request_id, "status": "429"}}}
                raise ApiError(ApiResponse(429, body, {**headers, "request-id": request_id,
                                                       "client-request-id": client_id}))
            raise graph_error(503, "serviceNotAvailable",
                              "The service is temporarily unavailable for maintenance or is overloaded. You may "
                              "repeat the request after a delay, the length of which may be specified in a "
                              "Retry-After header.", req, headers)
        if service == "exchange":
            code = "TooManyRequests" if fault.status == 429 else "ServiceUnavailable"
            # Lab wording: the admin API's throttling text was not found in a citable source.
            message = ("You have reached the maximum number of concurrent requests per tenant. Please wait and "
                       "try again." if fault.status == 429 else "The service is temporarily unavailable.")
            raise ApiError(ApiResponse(fault.status, {"error": {"code": code, "message": message}}, headers))
        raise ApiError(ApiResponse(fault.status, {"output": [], "warnings": [], "errors": [_ps_error(
            "System.Net.WebException", "The WinRM service is busy; retry the request later.", "ResourceUnavailable",
            "Invoke-Command")], "had_errors": True}, headers))

    # ------------------------------------------------------------------------------------------

    # ------------------------------------------------------------------------------------------
    # Graph

    def _graph_entry(self, req: ApiRequest) -> ApiResponse:
        version, _, rest = req.path.lstrip("/").partition("/")
        req.version = version
        req.claims = self._graph_auth(req)
        self._apply_faults("graph", req)
        response = self._graph_dispatch(req, "/" + rest)
        request_id, client_id = _request_ids(req)
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_id)
        return response


    def _graph_dispatch(self, req: ApiRequest, sub_path: str) -> ApiResponse:
        path = urllib.parse.unquote(sub_path).rstrip("/") or "/"
        for route in self.graph_routes:
            match = route.pattern.fullmatch(path)
            if match:
                if req.method not in route.methods:
                    raise graph_error(405, "Request_BadRequest",
                                      "Specified HTTP method is not allowed for the request target.", req)
                return route.handler(req, match)
        first = path.strip("/").split("/", 1)[0] or path
        # Graph answers an unknown segment with 400 (e.g. "Resource not found for the segment 'x'.").
        raise graph_error(400, "BadRequest", f"Resource not found for the segment '{first}'.", req)

    def _graph_routes(self) -> list[_Route]:
        def route(methods: str, pattern: str, handler: Callable[[ApiRequest, re.Match[str]], ApiResponse]) -> _Route:
            return _Route(frozenset(methods.split()), re.compile(pattern, re.IGNORECASE), handler)

        seg = r"([^/]+)"
        cast = r"(?:/(microsoft\.graph\.(?:user|group|orgContact)))?"
        return [
            route("POST", r"/\$batch", self._batch),
            route("GET", r"/organization", self._organization),
            route("GET", r"/users", lambda r, m: self._list_kind(r, "user")),
            route("GET", r"/users/\$count", lambda r, m: self._count_kind(r, "user")),
            route("GET", rf"/users/{seg}/(memberOf|transitiveMemberOf){cast}", self._member_of),
            route("GET", rf"/users/{seg}/authentication/methods", self._auth_methods),
            route("GET", rf"/users/{seg}/authentication/methods/{seg}", self._auth_method),
            route("GET PATCH", rf"/(users|groups|contacts)/{seg}/onPremisesSyncBehavior", self._sync_behavior),
            route("GET DELETE PATCH", rf"/users/{seg}", self._user_item),
            route("GET POST", r"/groups", lambda r, m: self._list_kind(r, "group") if r.method == "GET"
                  else self._create_group(r, m)),
            route("GET", r"/groups/\$count", lambda r, m: self._count_kind(r, "group")),
            route("GET", rf"/groups/{seg}/(members|transitiveMembers){cast}/\$count", self._members_count),
            route("GET", rf"/groups/{seg}/(members|transitiveMembers){cast}", self._members),
            route("POST", rf"/groups/{seg}/members/\$ref", self._add_member_ref),
            route("DELETE", rf"/groups/{seg}/members/{seg}/\$ref", self._remove_member_ref),
            route("GET", rf"/groups/{seg}/(memberOf|transitiveMemberOf){cast}", self._member_of),
            route("GET DELETE PATCH", rf"/groups/{seg}", self._group_item),
            route("GET", r"/contacts", lambda r, m: self._list_kind(r, "contact")),
            route("GET", rf"/contacts/{seg}", self._contact_item),
            route("GET", r"/directoryObjects/" + seg, self._directory_object),
            route("GET", r"/reports/authenticationMethods/userRegistrationDetails", self._registration_list),
            route("GET", rf"/reports/authenticationMethods/userRegistrationDetails/{seg}", self._registration_item),
            route("GET", r"/auditLogs/directoryAudits", self._audit_list),
            route("GET", rf"/auditLogs/directoryAudits/{seg}", self._audit_item),
            *self.conditional_access_routes(route, seg),
        ]

    # -- query options

    # -- $batch

    def _batch(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        try:
            payload = req.json()
        except ValueError:
            payload = None
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            raise graph_error(400, "BadRequest", "Invalid batch payload format.", req)
        if len(requests) > MAX_BATCH:
            # Wording of the Graph SDKs' own check (MaximumValueExceeded); the service's text could
            # not be confirmed.
            raise graph_error(400, "BadRequest",
                              f"Number of batch request steps exceeds the maximum value of {MAX_BATCH}.", req)
        ids = [str(item.get("id")) if isinstance(item, dict) else None for item in requests]
        if None in ids or len(set(ids)) != len(ids):
            raise graph_error(400, "BadRequest", "Batch request ids must be present and unique.", req)
        statuses: dict[str, int] = {}
        responses = []
        for item in requests:
            rid = str(item["id"])
            depends = item.get("dependsOn") or []
            if any(statuses.get(str(d), 0) >= 400 or str(d) not in statuses for d in depends):
                statuses[rid] = 424
                responses.append({"id": rid, "status": 424, "headers": {"Content-Type": "application/json"},
                                  "body": graph_error(424, "BadRequest", "Failed dependency", req).response.body})
                continue
            sub = self._batch_item(req, item)
            statuses[rid] = sub.status
            entry: dict[str, Any] = {"id": rid, "status": sub.status,
                                     "headers": {k: v for k, v in sub.headers.items()
                                                 if k.lower() not in {"request-id", "client-request-id"}}}
            if sub.body is not None:
                if isinstance(sub.body, str):
                    entry["headers"]["Content-Type"] = "text/plain"
                    entry["body"] = sub.body
                else:
                    entry["headers"]["Content-Type"] = "application/json; odata.metadata=minimal"
                    entry["body"] = sub.body
            responses.append(entry)
        return ApiResponse(200, {"responses": responses})

    def _batch_item(self, req: ApiRequest, item: Mapping[str, Any]) -> ApiResponse:
        url = str(item.get("url") or "")
        method = str(item.get("method") or "GET").upper()
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path if not parsed.scheme else parsed.path
        path = "/" + path.lstrip("/")
        # A step's url is relative to the batch's version; SDKs sometimes keep the version prefix.
        version = req.version
        for prefix in ("/v1.0/", "/beta/"):
            if path.lower().startswith(prefix):
                version = prefix.strip("/")
                path = path[len(prefix) - 1:]
        body = item.get("body")
        sub = ApiRequest(
            method=method, path=f"/{version}{path}",
            query=urllib.parse.parse_qsl(parsed.query, keep_blank_values=True),
            headers={**{k.lower(): str(v) for k, v in (item.get("headers") or {}).items()},
                     "authorization": req.headers.get("authorization", "")},
            body=json.dumps(body).encode() if body is not None else b"",
            base_url=req.base_url, claims=req.claims, version=version,
        )
        try:
            return self._graph_dispatch(sub, path)
        except ApiError as error:
            return error.response

    def _not_found_path(self, req: ApiRequest) -> ApiError:
        # Graph's answer when no service owns the path (observed: 404 "ResourceNotFound",
        # "Resource could not be discovered.").
        return graph_error(404, "ResourceNotFound", "Resource could not be discovered.", req)




# --------------------------------------------------------------------------------------------
# ASGI


def create_app(
    *,
    data_dir: Path,
    tenant_id: str,
    initial_domain: str = "contoso.onmicrosoft.com",
    sync_runner: SyncRunner | None = None,
    onprem_runner: OnPremRunner | None = None,
    public_base_url: str | None = None,
    token_lifetime: int = 3599,
    sync_in_background: bool = True,
) -> Starlette:
    """The lab cloud as a Starlette application.

    ``data_dir`` holds the SQLite database; ``tenant_id`` binds it to one tenant. ``sync_runner``
    runs one sync cycle (called with "Delta" or "Initial" on ``Start-ADSyncSyncCycle``, in a thread
    of its own unless ``sync_in_background`` is False); ``onprem_runner`` answers the Exchange
    on-premises cmdlets. ``public_base_url`` fixes the host used in absolute links (default: the
    request's own). The ``LabCloud`` instance is ``app.state.cloud``.
    """
    cloud = LabCloud(
        data_dir=Path(data_dir), tenant_id=tenant_id, initial_domain=initial_domain, sync_runner=sync_runner,
        onprem_runner=onprem_runner, public_base_url=public_base_url, token_lifetime=token_lifetime,
        sync_in_background=sync_in_background,
    )

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        api_request = ApiRequest(
            method=request.method.upper(),
            path=request.url.path,
            query=urllib.parse.parse_qsl(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            base_url=f"{request.url.scheme}://{request.url.netloc}",
        )
        result = await run_in_threadpool(cloud.handle, api_request)
        return _to_starlette(result)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
    app.state.cloud = cloud
    return app


def _to_starlette(result: ApiResponse) -> Response:
    headers = dict(result.headers)
    if result.body is None:
        return Response(status_code=result.status, headers=headers)
    if isinstance(result.body, str | bytes):
        return Response(result.body, status_code=result.status, headers=headers,
                        media_type=result.content_type or "text/plain")
    return Response(encode_json(result.body), status_code=result.status, headers=headers,
                    media_type=result.content_type or "application/json")


__all__ = ["LabCloud", "create_app"]
