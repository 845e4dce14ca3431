"""EntraGraph: Microsoft Graph for one tenant as a synchronous API (users, groups, members, MFA
registration and methods, directory audits, checks).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx
from kiota_abstractions.authentication import (
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.models.page_result import PageResult

from ..ad.types import CheckItem
from .auth import TokenSource, _MsalAccessTokenProvider
from .convert import (
    DEFAULT_GROUP_SELECT,
    DEFAULT_MEMBER_SELECT,
    DEFAULT_USER_SELECT,
    _audit,
    _auth_method,
    _group,
    _member,
    _registration,
    _user,
)
from .errors import GraphError, TokenError, _header, _map_exception, _retry_after, error_for_status
from .group_writes import GroupWritesMixin
from .policies import PolicyReadsMixin
from .query import ODataFilter, _filter_text, _select
from .settings import GraphSettings
from .together import BATCH_LIMIT, PagingTogetherMixin, batch_body
from .transport import (
    _ERROR_MAP,
    GraphCallStats,
    _CountingTransport,
    _JsonPageAdapter,
    _LoopThread,
    _page,
    _PageIterator,
    _ReleasingClient,
    _send_json,
    parse_json,
    prefetched,
    wait,
)
from .types import (
    AuthMethod,
    CloudCheckReport,
    DirectoryAudit,
    EntraGroup,
    EntraUser,
    GroupMember,
    GroupWriteback,
    RegistrationDetails,
    SyncBehavior,
    UserAuthMethods,
)

T = TypeVar("T")


class EntraGraph(PolicyReadsMixin, GroupWritesMixin, PagingTogetherMixin):
    """Microsoft Graph for one tenant, as a synchronous API. See the package docstring.

    Use as a context manager (or call :meth:`close`) so that its loop thread and connections end.
    Safe to share between threads: all calls run on the instance's one event loop.

    ``token_source`` and ``transport`` replace msal and the network (tests, or a token the caller
    already holds); production code passes only settings.
    """

    def __init__(
        self,
        settings: GraphSettings,
        *,
        token_source: TokenSource | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._tokens = token_source or TokenSource(settings.credentials)
        self._transport = transport
        self._runner = _LoopThread(f"EntraGraph-{settings.credentials.tenant_id[:8]}")
        self._client: GraphServiceClient | None = None
        self._client_generation = 0
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self.stats = GraphCallStats()  # what this instance sent, for jobs that report their cost

    @property
    def tenant_id(self) -> str:
        """The tenant this instance reads (what the portal keeps per tenant is keyed by it)."""
        return self.settings.credentials.tenant_id

    # ---- lifecycle

    def __enter__(self) -> EntraGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        http = self._http
        self._runner.close((lambda: http.aclose()) if http is not None else None)
        self._client = self._http = None

    def _graph(self) -> GraphServiceClient:
        # built on the loop thread, so httpx binds its pool to the loop that will use it
        if self._client is not None and self._client_generation != self._runner.generation:
            self._client = self._http = None  # made for a loop that no longer runs (forked process)
        if self._client is None:
            self._client_generation = self._runner.generation
            s = self.settings
            verify: ssl.SSLContext | bool = True
            if s.credentials.ca_file:
                verify = ssl.create_default_context(cafile=s.credentials.ca_file)
            client_args: dict[str, Any] = {
                "base_url": s.base,
                "timeout": httpx.Timeout(s.timeout, connect=min(s.timeout, 15.0)),
                "verify": verify,
                "trust_env": False,  # no environment CA bundle or proxy overriding the settings
                "follow_redirects": False,  # the SDK's redirect handler decides
            }
            if s.credentials.proxy:
                client_args["proxy"] = s.credentials.proxy
            if self._transport is not None:
                client_args["transport"] = self._transport
            http = _ReleasingClient(**client_args)
            http._transport = _CountingTransport(http._transport, self.stats)  # the SDK's factory wraps it alike
            options = {
                RetryHandlerOption.get_key(): RetryHandlerOption(delay=s.retry_delay, max_retries=s.max_retries),
            }
            http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
            hosts = sorted({urlsplit(s.base).hostname or "", urlsplit(s.beta).hostname or ""} - {""})
            provider = _MsalAccessTokenProvider(self._tokens, s.scope, hosts)
            adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider), client=http)
            adapter.base_url = s.base
            self._http = http
            self._client = GraphServiceClient(request_adapter=adapter)
        return self._client

    def _submit(self, what: str, factory: Callable[[GraphServiceClient], Awaitable[T]]) -> Future[T]:
        """Start the work on the connector's loop; its failure leaves as a GraphError when waited for."""
        if self._closed:
            raise GraphError(f"{what}: the connector is closed")
        return self._runner.submit(self._call(what, factory))

    async def _call(self, what: str, factory: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
        try:
            return await factory(self._graph())
        except Exception as exc:  # noqa: BLE001 - every failure leaves as a GraphError
            mapped = _map_exception(exc, what, self.settings.credentials.secrets)
            raise mapped from (exc if mapped is not exc else None)

    def _run(self, what: str, factory: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
        return wait(self._submit(what, factory))

    def _get(self, what: str, request: Callable[[GraphServiceClient], RequestInformation]) -> dict[str, Any]:
        """One object, the request built by the SDK's builders, read as JSON."""

        async def fetch(client: GraphServiceClient) -> dict[str, Any]:
            doc = await _send_json(client.request_adapter, request(client))
            if not isinstance(doc, dict) or "id" not in doc:
                raise GraphError(f"{what}: the answer holds no object")
            return doc

        return self._run(what, fetch)

    # ---- paging

    def _pages(
        self,
        what: str,
        first: Callable[[GraphServiceClient], RequestInformation],
        convert: Callable[[Any], T],
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[T]:
        """Fetch the first page now (so errors surface at the call) and return an iterator over all.

        ``first`` builds the request with the SDK's request builders; following pages come through the
        SDK's PageIterator, each requested as soon as the page before it is read; pages are converted on the
        connector's loop (:func:`prefetched`, ``convert``); at most three pages are held at a time.
        """

        def converted(page: PageResult) -> list[T]:
            return [convert(v) for v in page.value or ()]

        async def fetch(client: GraphServiceClient) -> tuple[list[T], PageResult, _PageIterator]:
            page = _page(await _send_json(client.request_adapter, first(client)))
            return converted(page), page, await self._make_iterator(page, headers)

        items, page, iterator = self._run(what, fetch)

        async def follow(current: PageResult) -> tuple[PageResult, PageResult | None]:
            iterator.current_page = current
            following: PageResult = await iterator.next()  # type: ignore[assignment] - current names a next link
            return following, (following if following.odata_next_link else None)

        pages = prefetched(self._runner.submit, items, page if page.odata_next_link else None,
                           lambda current: self._call(what, lambda _client: follow(current)), converted)
        return _flattened(pages)

    async def _make_iterator(self, page: PageResult, headers: Mapping[str, str] | None) -> _PageIterator:
        adapter = _JsonPageAdapter(self._graph().request_adapter)
        iterator = _PageIterator(page, adapter, error_mapping=_ERROR_MAP)  # type: ignore[arg-type]
        for name, value in (headers or {}).items():
            # PageIterator.set_headers passes the dict as keywords, which HeadersCollection refuses
            iterator.headers.add(name, value)
        return iterator

    @staticmethod
    def _config(
        query: Any | None = None, headers: Mapping[str, str] | None = None
    ) -> RequestConfiguration:
        config: RequestConfiguration = RequestConfiguration(query_parameters=query)
        if headers:
            config.headers.add_all(dict(headers))
        return config

    # ---- users

    def iter_users(
        self,
        *,
        select: Iterable[str] | None = DEFAULT_USER_SELECT,
        filter: ODataFilter | str | None = None,  # noqa: A002 - Graph's term
        advanced: bool = False,
        page_size: int | None = None,
    ) -> Iterator[EntraUser]:
        """Every user (matching ``filter``), a few pages in memory at a time (the next ones read ahead).

        ``advanced=True`` sends ``ConsistencyLevel: eventual`` and ``$count=true``, which Graph
        requires for advanced queries (``endsWith``, ``ne``, ``not``, filters on some properties).
        """
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=_select(select), filter=_filter_text(filter), top=page_size or self.settings.page_size,
            count=True if advanced else None,
        )
        headers = {"ConsistencyLevel": "eventual"} if advanced else None
        config = self._config(query, headers)
        return self._pages("list users", lambda c: c.users.to_get_request_information(config), _user, headers)

    def get_user(self, user_id_or_upn: str, *, select: Iterable[str] | None = DEFAULT_USER_SELECT) -> EntraUser:
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        key = _path_key(user_id_or_upn)
        config = self._config(UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=_select(select)))
        return _user(self._get(f"read user {user_id_or_upn}",
                               lambda c: c.users.by_user_id(key).to_get_request_information(config)))

    def count_users(self, *, filter: ODataFilter | str | None = None) -> int:  # noqa: A002
        """The number of users (``/users/$count``, which needs ``ConsistencyLevel: eventual``)."""
        from msgraph.generated.users.count.count_request_builder import CountRequestBuilder

        query = CountRequestBuilder.CountRequestBuilderGetQueryParameters(filter=_filter_text(filter))
        config = self._config(query, {"ConsistencyLevel": "eventual"})
        value = self._run("count users", lambda c: c.users.count.get(request_configuration=config))
        return int(value or 0)

    # ---- groups

    def iter_groups(
        self,
        *,
        select: Iterable[str] | None = DEFAULT_GROUP_SELECT,
        filter: ODataFilter | str | None = None,  # noqa: A002
        advanced: bool = False,
        page_size: int | None = None,
    ) -> Iterator[EntraGroup]:
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            select=_select(select), filter=_filter_text(filter), top=page_size or self.settings.page_size,
            count=True if advanced else None,
        )
        headers = {"ConsistencyLevel": "eventual"} if advanced else None
        config = self._config(query, headers)
        return self._pages("list groups", lambda c: c.groups.to_get_request_information(config), _group, headers)

    def get_group(self, group_id: str, *, select: Iterable[str] | None = DEFAULT_GROUP_SELECT) -> EntraGroup:
        from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

        key = _path_key(group_id)
        config = self._config(GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=_select(select)))
        return _group(self._get(f"read group {group_id}",
                                lambda c: c.groups.by_group_id(key).to_get_request_information(config)))

    def iter_group_members(
        self,
        group_id: str,
        *,
        transitive: bool = False,
        select: Iterable[str] | None = DEFAULT_MEMBER_SELECT,
        page_size: int | None = None,
    ) -> Iterator[GroupMember]:
        """Direct members of a group, or every member through nested groups (``transitive``)."""
        from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
        from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
            TransitiveMembersRequestBuilder,
        )

        key = _path_key(group_id)
        if transitive:
            query: Any = TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(
                select=_select(select), top=page_size or self.settings.page_size)
        else:
            query = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
                select=_select(select), top=page_size or self.settings.page_size)
        config = self._config(query)

        def first(c: GraphServiceClient) -> RequestInformation:
            item = c.groups.by_group_id(key)
            return (item.transitive_members if transitive else item.members).to_get_request_information(config)

        kind = "transitive members" if transitive else "members"
        return self._pages(f"list {kind} of group {group_id}", first, _member)

    def iter_group_member_of(
        self, group_id: str, *, select: Iterable[str] | None = DEFAULT_MEMBER_SELECT, page_size: int | None = None
    ) -> Iterator[GroupMember]:
        """The groups (and administrative units) a group is a direct member of: one paged read answers what
        would otherwise take reading the members of every group."""
        from msgraph.generated.groups.item.member_of.member_of_request_builder import MemberOfRequestBuilder

        key = _path_key(group_id)
        query = MemberOfRequestBuilder.MemberOfRequestBuilderGetQueryParameters(
            select=_select(select), top=page_size or self.settings.page_size)
        config = self._config(query)
        return self._pages(f"list the groups of group {group_id}",
                           lambda c: c.groups.by_group_id(key).member_of.to_get_request_information(config), _member)

    def iter_group_transitive_members(
        self, group_id: str, *, select: Iterable[str] | None = DEFAULT_MEMBER_SELECT
    ) -> Iterator[GroupMember]:
        return self.iter_group_members(group_id, transitive=True, select=select)

    def delete_group(self, group_id: str) -> None:
        """Delete a cloud group (it stays restorable in deleted items for 30 days)."""
        key = _path_key(group_id)
        self._run(f"delete group {group_id}", lambda c: c.groups.by_group_id(key).delete())

    def group_writeback(self, group_id: str) -> GroupWriteback:
        """The group's writeback settings, read from the beta endpoint (v1.0 does not have them)."""
        key = _path_key(group_id)
        url = f"{self.settings.beta}/groups/{key}?$select=id,displayName,groupTypes,writebackConfiguration"
        doc = self._get_json(f"read writeback settings of group {group_id}", url)
        config = doc.get("writebackConfiguration") or {}
        return GroupWriteback(
            group_id=str(doc.get("id") or group_id),
            display_name=doc.get("displayName"),
            group_types=tuple(doc.get("groupTypes") or ()),
            is_enabled=config.get("isEnabled"),
            on_premises_group_type=config.get("onPremisesGroupType"),
        )

    # ---- source of authority (Graph v1.0 ``onPremisesSyncBehavior``; Group-OnPremisesSyncBehavior.ReadWrite.All)

    def sync_behavior(self, group_id: str) -> SyncBehavior:
        """Whether the group's source of authority is the cloud (``isCloudManaged``)."""
        key = _path_key(group_id)
        doc = self._get(f"read the source of authority of group {group_id}",
                        lambda c: c.groups.by_group_id(key).on_premises_sync_behavior.to_get_request_information())
        return SyncBehavior(object_id=str(doc.get("id") or group_id), is_cloud_managed=bool(doc.get("isCloudManaged")))

    def granted_roles(self) -> frozenset[str]:
        """The application permissions in the app's current Graph token (``roles`` claim)."""
        return frozenset(str(r) for r in self._tokens.acquire(self.settings.scope).claims.get("roles") or ())

    def set_sync_behavior(self, group_id: str, *, cloud_managed: bool) -> None:
        """Hand the group's source of authority to the cloud (True) or back to AD (False, effective at the
        next sync cycle)."""
        from msgraph.generated.models.on_premises_sync_behavior import OnPremisesSyncBehavior

        key = _path_key(group_id)
        body = OnPremisesSyncBehavior(is_cloud_managed=cloud_managed)
        verb = "hand to the cloud" if cloud_managed else "hand back to AD"
        self._run(f"{verb} the source of authority of group {group_id}",
                  lambda c: c.groups.by_group_id(key).on_premises_sync_behavior.patch(body))

    # ---- reports and audit log

    def user_registration_details(
        self,
        *,
        filter: ODataFilter | str | None = None,  # noqa: A002
        select: Iterable[str] | None = None,
        top: int | None = None,
    ) -> Iterator[RegistrationDetails]:
        """The authentication-methods registration report (Entra ID P1/P2), one row per user.

        ``top`` sets the page size (fewer calls for a large tenant). Raises :class:`LicenceRequired`
        at the call when the tenant lacks the licence.
        """
        from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (  # noqa: E501
            UserRegistrationDetailsRequestBuilder,
        )

        query = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(
            filter=_filter_text(filter), select=_select(select), top=top)
        config = self._config(query)
        return self._pages(
            "read the userRegistrationDetails report",
            lambda c: c.reports.authentication_methods.user_registration_details.to_get_request_information(config),
            _registration,
        )

    def directory_audits(
        self,
        *,
        filter: ODataFilter | str | None = None,  # noqa: A002
        top: int | None = None,
        orderby: str | None = None,
    ) -> Iterator[DirectoryAudit]:
        """Directory audit events (``auditLogs/directoryAudits``), newest first unless ``orderby``."""
        from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
            DirectoryAuditsRequestBuilder,
        )

        if orderby is not None and not re.fullmatch(r"[A-Za-z/]+( (asc|desc))?", orderby):
            raise ValueError(f"orderby {orderby!r} is not 'property [asc|desc]'")
        query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
            filter=_filter_text(filter), top=top, orderby=[orderby] if orderby else None)
        config = self._config(query)
        return self._pages("read the directory audit log",
                           lambda c: c.audit_logs.directory_audits.to_get_request_information(config), _audit)

    # ---- authentication methods

    def user_auth_methods(self, user_id: str) -> tuple[AuthMethod, ...]:
        """The registered methods of one user (Microsoft advises against this for a whole tenant)."""
        key = _path_key(user_id)
        return tuple(self._pages(
            f"read authentication methods of {user_id}",
            lambda c: c.users.by_user_id(key).authentication.methods.to_get_request_information(),
            _auth_method,
        ))

    def user_auth_methods_many(self, user_ids: Iterable[str]) -> dict[str, UserAuthMethods]:
        """Methods of many users through ``$batch``; one failing user does not fail the others."""
        return {item.user_id: item for item in self.iter_user_auth_methods(user_ids)}

    def iter_user_auth_methods(self, user_ids: Iterable[str]) -> Iterator[UserAuthMethods]:
        """Methods of many users, 20 per ``$batch`` and ``batch_concurrency`` batches at a time.

        Yields one :class:`UserAuthMethods` per user id, in input order, as each group of batches
        completes; 429/503 items are retried after their ``Retry-After``.
        """
        ids = list(dict.fromkeys(user_ids))
        group = BATCH_LIMIT * self.settings.batch_concurrency
        for start in range(0, len(ids), group):
            chunk = ids[start:start + group]
            results = self._run(f"read authentication methods of {len(chunk)} users",
                                lambda c, chunk=chunk: self._auth_methods_batched(c, chunk))
            for user_id in chunk:
                yield results[user_id]

    async def _auth_methods_batched(
        self, client: GraphServiceClient, user_ids: list[str]
    ) -> dict[str, UserAuthMethods]:
        results: dict[str, UserAuthMethods] = {}
        pending = list(user_ids)
        size = BATCH_LIMIT
        attempt = 0
        while pending:
            chunks = [pending[i:i + size] for i in range(0, len(pending), size)]
            answers = await asyncio.gather(*(self._post_batch(client, chunk) for chunk in chunks))
            retry: list[str] = []
            wait = 0.0
            for answer in answers:
                for user_id, (status, headers, body) in answer.items():
                    if status in (429, 503, 504) and attempt < self.settings.batch_item_retries:
                        after = _retry_after(headers)
                        if after is None or after <= self.settings.max_retry_wait:
                            retry.append(user_id)
                            wait = max(wait, after if after is not None else self.settings.retry_delay * 2 ** attempt)
                            continue
                    results[user_id] = await self._auth_item(client, user_id, status, headers, body)
            pending = retry
            if pending:
                attempt += 1
                await asyncio.sleep(wait)
        return results

    async def _post_batch(
        self, client: GraphServiceClient, user_ids: list[str]
    ) -> dict[str, tuple[int, Mapping[str, Any], Any]]:
        # the body is written here, not by the SDK's request builders and BatchRequestContent: those cost ~2 ms a
        # user, most of reading 700 users' methods; the answer is read raw anyway (BatchResponseContent drops JSON
        # object bodies, kiota-python #737), through the same adapter (auth, retry middleware)
        by_request = {str(number): user_id for number, user_id in enumerate(user_ids, start=1)}
        self.stats.batch_items += len(by_request)
        answer = await self._post_json_async(
            client, f"read authentication methods of {len(by_request)} users", f"{self.settings.base}/$batch",
            batch_body((rid, f"/users/{quote(_path_key(uid), safe='')}/authentication/methods")
                       for rid, uid in by_request.items()))
        out: dict[str, tuple[int, Mapping[str, Any], Any]] = {}
        for response in answer.get("responses") or ():
            user_id = by_request.get(str(response.get("id")))
            if user_id is not None:
                out[user_id] = (int(response.get("status") or 0), response.get("headers") or {}, response.get("body"))
        for request_id, user_id in by_request.items():
            if user_id not in out:
                out[user_id] = (0, {}, {"error": {"code": "missingResponse",
                                                   "message": f"the batch returned no response for item {request_id}"}})
        return out

    async def _auth_item(
        self, client: GraphServiceClient, user_id: str, status: int, headers: Mapping[str, Any], body: Any
    ) -> UserAuthMethods:
        what = f"read authentication methods of {user_id}"
        if isinstance(body, str):
            with contextlib.suppress(ValueError):
                body = parse_json(base64.b64decode(body))
        if 200 <= status < 300 and isinstance(body, dict):
            methods = [_auth_method(doc) for doc in body.get("value") or ()]
            next_link = body.get("@odata.nextLink")
            while next_link:
                page = await self._get_json_async(client, what, next_link)
                methods.extend(_auth_method(doc) for doc in page.get("value") or ())
                next_link = page.get("@odata.nextLink")
            return UserAuthMethods(user_id=user_id, methods=tuple(methods))
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        inner = error.get("innerError") or {}
        return UserAuthMethods(user_id=user_id, error=error_for_status(
            what, status or None, code=error.get("code"), message=error.get("message"),
            request_id=inner.get("request-id") or _header(headers, "request-id"), retry_after=_retry_after(headers),
        ))

    # ---- raw requests (endpoints the v1.0 SDK does not model)

    async def _get_json_async(self, client: GraphServiceClient, what: str, url: str) -> dict[str, Any]:
        request = RequestInformation()
        request.http_method = Method.GET
        request.url = url
        request.headers = HeadersCollection()
        doc = await _send_json(client.request_adapter, request)
        if not isinstance(doc, dict):
            raise GraphError(f"{what}: expected a JSON object")
        return doc

    def _get_json(self, what: str, url: str) -> dict[str, Any]:
        return self._run(what, lambda c: self._get_json_async(c, what, url))

    def _post_json(self, what: str, url: str, body: bytes) -> dict[str, Any]:
        """A raw JSON POST (a hand-built ``$batch``) through the same adapter: auth, retry middleware, errors."""
        return self._run(what, lambda client: self._post_json_async(client, what, url, body))

    async def _post_json_async(self, client: GraphServiceClient, what: str, url: str, body: bytes) -> dict[str, Any]:
        request = RequestInformation()
        request.http_method = Method.POST
        request.url = url
        request.headers = HeadersCollection()
        request.headers.try_add("Accept", "application/json")
        request.set_stream_content(body, "application/json")
        raw = await client.request_adapter.send_primitive_async(request, "bytes", _ERROR_MAP)
        doc = parse_json(raw or b"{}")
        if not isinstance(doc, dict):
            raise GraphError(f"{what}: expected a JSON object")
        return doc

    # ---- address repair: the tenant's domains (one self-contained method, easy to move)

    def verified_domains(self) -> tuple[tuple[str, ...], str | None]:
        """The tenant's verified domain names and its initial (``*.onmicrosoft.com``) domain (``/organization``)."""
        orgs = self._run("read the organization", lambda c: c.organization.get())
        names: list[str] = []
        initial: str | None = None
        for org in (orgs.value if orgs is not None else None) or ():
            for domain in org.verified_domains or ():
                if domain.name:
                    names.append(domain.name)
                    if domain.is_initial:
                        initial = domain.name
        return tuple(names), initial

    # ---- connectivity check

    def check(self) -> CloudCheckReport:
        """Token obtained, tenant id, one cheap read (``/organization``); never raises."""
        s = self.settings
        items: list[CheckItem] = []
        details: dict[str, Any] = {"authority": s.credentials.authority, "graph_url": s.base,
                                   "client_id": s.credentials.client_id}
        try:
            access = self._tokens.acquire(s.scope)
        except TokenError as exc:
            items.append(CheckItem("token", False, exc.message))
            return CloudCheckReport(False, "Microsoft Graph", s.base, tuple(items), details)
        roles = sorted(str(r) for r in access.claims.get("roles") or ())
        details["roles"] = roles
        items.append(CheckItem("token", True, f"token for {s.scope} from {s.credentials.authority}"
                                              + (f"; app roles: {', '.join(roles)}" if roles else "")))
        tid = access.claims.get("tid")
        details["tenant_id"] = tid
        if tid and _looks_like_guid(s.credentials.tenant_id) and str(tid).lower() != s.credentials.tenant_id.lower():
            items.append(CheckItem("tenant", False, f"the token is for tenant {tid}, not {s.credentials.tenant_id}"))
        elif tid:
            items.append(CheckItem("tenant", True, f"tenant {tid}"))
        try:
            orgs = self._run("read the organization", lambda c: c.organization.get())
            org = (getattr(orgs, "value", None) or [None])[0]
            if org is None:
                items.append(CheckItem("read", False, "/organization returned nothing"))
            else:
                details["tenant_id"] = details.get("tenant_id") or org.id
                details["tenant_name"] = org.display_name
                items.append(CheckItem("read", True, f"read /organization: {org.display_name} ({org.id})"))
        except GraphError as exc:
            items.append(CheckItem("read", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Microsoft Graph", s.base, tuple(items), details)


def _flattened(pages: Iterator[list[T]]) -> Iterator[T]:
    with contextlib.closing(pages):  # stopping early cancels the page read ahead
        for page in pages:
            yield from page


def _looks_like_guid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _path_key(value: str) -> str:
    """An id or UPN as one URL path segment.

    Kiota percent-encodes it (a guest's ``#EXT#`` becomes ``%23EXT%23``); slashes are refused all
    the same, since a server that decodes ``%2F`` would read a different path.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an object id or user principal name is required")
    if any(ch in value for ch in "/\\") or any(ord(ch) < 0x20 for ch in value):
        raise ValueError(f"{value!r} is not an object id or user principal name")
    return value


def _relative_url(url: str, base: str) -> str:
    if url.startswith(base):
        rest = url[len(base):]
        return rest if rest.startswith("/") else "/" + rest
    parts = urlsplit(url)
    return quote(parts.path) + (f"?{parts.query}" if parts.query else "")
