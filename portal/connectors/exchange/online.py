"""Exchange Online through the admin REST ``InvokeCommand`` endpoint (msal app token)."""

from __future__ import annotations

import contextlib
import itertools
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx

from ..ad.dn import parse_dn
from ..ad.errors import InvalidDn
from ..ad.types import CheckItem
from ..graph.auth import AppCredentials, TokenSource
from ..graph.errors import TokenError, _retry_after, _scrub
from ..graph.types import CloudCheckReport
from .errors import (
    AccessDenied,
    ExchangeError,
    InvalidParameter,
    MemberAlreadyExists,
    MemberNotFound,
    ObjectNotFound,
    OutcomeUnknown,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
    Unreachable,
    _CmdletNotAvailable,
    classify_error,
    human_message,
    parse_exception_type,
)
from .opath import OpathFilter, _check_text, _checked_opath, opath_all, opath_any, opath_eq
from .params import (
    _JOIN,
    SET_DISTRIBUTION_GROUP_PARAMETERS,
    SET_MAIL_CONTACT_PARAMETERS,
    SET_MAILBOX_PARAMETERS,
    SWITCH,
    _identities,
    _identity,
    _json_value,
    _name,
    _read_only,
    _typed_changes,
    alias_value,
    check_parameters,
    smtp_address,
)
from .types import AcceptedDomain, DistributionGroup, OutboundConnector, Recipient, RecipientPermission, only_match

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
# The mailbox the Exchange Online module anchors app-only sessions to.
_APP_ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"

_ALL_RECIPIENT_GETS = ("Get-Mailbox", "Get-MailUser", "Get-MailContact", "Get-DistributionGroup")
# Which cmdlets can filter on which link property (dependency searches).
DEPENDENCY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "ManagedBy": ("Get-DistributionGroup",),
    "AcceptMessagesOnlyFromSendersOrMembers": _ALL_RECIPIENT_GETS,
    "RejectMessagesFromSendersOrMembers": _ALL_RECIPIENT_GETS,
    "ModeratedBy": _ALL_RECIPIENT_GETS,
    "BypassModerationFromSendersOrMembers": _ALL_RECIPIENT_GETS,
    "GrantSendOnBehalfTo": _ALL_RECIPIENT_GETS,
    "ForwardingAddress": ("Get-Mailbox",),
    "MemberOfGroup": _ALL_RECIPIENT_GETS,
}
# How long a dependency filter over many objects may grow: far below what the connector lets through, so that
# Exchange's own parsing and its answer stay small (a chunk answers for some ten objects per property).
DEPENDENCY_FILTER_CHARS = 8000


@dataclass(frozen=True)
class ExchangeOnlineSettings:
    """How to reach Exchange Online's admin API for one tenant."""

    credentials: AppCredentials
    base_url: str = "https://outlook.office365.com"
    tenant: str | None = None  # URL segment; default credentials.tenant_id (a domain works too)
    organization: str | None = None  # e.g. contoso.onmicrosoft.com: anchors the session like the EXO module
    scope: str = EXCHANGE_SCOPE
    timeout: float = 120.0
    max_retries: int = 4
    max_retry_wait: float = 120.0  # a longer Retry-After ends in Throttled at once
    retry_backoff: float = 1.0  # wait before a retry when the answer has no Retry-After (doubles each time)
    page_size: int = 1000

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an absolute URL")
        if self.max_retries < 0 or self.page_size < 1:
            raise ValueError("max_retries must be >= 0 and page_size positive")

    @property
    def invoke_url(self) -> str:
        tenant = quote(self.tenant or self.credentials.tenant_id, safe="")
        return f"{self.base_url.rstrip('/')}/adminapi/beta/{tenant}/InvokeCommand"


class ExchangeOnline:
    """Exchange Online through the admin REST ``InvokeCommand`` endpoint. See the module docstring.

    A synchronous httpx client; safe to share between threads. ``token_source``, ``transport`` and
    ``sleep`` replace msal, the network and waiting (tests).
    """

    def __init__(
        self,
        settings: ExchangeOnlineSettings,
        *,
        token_source: TokenSource | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._tokens = token_source or TokenSource(settings.credentials)
        self._sleep = sleep
        c = settings.credentials
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=c.ca_file) if c.ca_file else True
        args: dict[str, Any] = {
            "timeout": httpx.Timeout(settings.timeout, connect=min(settings.timeout, 15.0)),
            "verify": verify,
            "trust_env": False,  # no environment CA bundle or proxy overriding the settings
        }
        if c.proxy:
            args["proxy"] = c.proxy
        if transport is not None:
            args["transport"] = transport
        self._http = httpx.Client(**args)
        self._allowed_host = urlsplit(settings.base_url).netloc.lower()

    def __enter__(self) -> ExchangeOnline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---- low level

    def _headers(self, cmdlet: str, *, fresh_token: bool = False) -> dict[str, str]:
        if fresh_token:
            self._tokens.invalidate()
        try:
            token = self._tokens.token(self.settings.scope)
        except TokenError as exc:
            cls = Unreachable if exc.unreachable else Unauthorized
            raise cls(f"{cmdlet}: {exc.message}", cmdlet=cmdlet, code=exc.code, request_id=exc.correlation_id) from None
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-CmdletName": cmdlet,
            "X-ClientApplication": "DirOpsPortal",
            "Prefer": f"odata.maxpagesize={self.settings.page_size}",
        }
        if self.settings.organization:
            headers["X-AnchorMailbox"] = _APP_ANCHOR + self.settings.organization
        return headers

    def _post(self, url: str, body: Mapping[str, Any], cmdlet: str) -> dict[str, Any]:
        """One POST with the retry policy; returns the JSON answer or raises an ExchangeError."""
        s = self.settings
        if urlsplit(url).netloc.lower() != self._allowed_host:
            raise ExchangeError(f"{cmdlet}: refusing to send the token to {urlsplit(url).netloc}", cmdlet=cmdlet)
        read_only = _read_only(cmdlet)
        attempt = 0
        refreshed = refresh_now = False
        secrets = s.credentials.secrets
        while True:
            attempt += 1
            try:
                response = self._http.post(url, json=body, headers=self._headers(cmdlet, fresh_token=refresh_now))
                refresh_now = False
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
                if attempt <= s.max_retries:
                    self._sleep(s.retry_backoff * 2 ** (attempt - 1))
                    continue
                detail = _scrub(str(exc) or type(exc).__name__, secrets)
                tls = "certificate" in detail.lower() or "ssl" in detail.lower()
                raise Unreachable(f"{cmdlet}: cannot reach {s.base_url}" + (" (TLS failed)" if tls else "")
                                  + f": {detail}", cmdlet=cmdlet) from None
            except httpx.TransportError as exc:
                detail = _scrub(str(exc) or type(exc).__name__, secrets)
                if read_only and attempt <= s.max_retries:
                    self._sleep(s.retry_backoff * 2 ** (attempt - 1))
                    continue
                if read_only:
                    raise Unreachable(f"{cmdlet}: connection to {s.base_url} failed: {detail}", cmdlet=cmdlet) from None
                raise OutcomeUnknown(f"{cmdlet}: the connection broke after the request was sent; re-read before "
                                     f"retrying ({detail})", cmdlet=cmdlet) from None
            status = response.status_code
            if status == 401 and not refreshed:
                refreshed = refresh_now = True  # a cached token the service no longer accepts: get a new one once
                continue
            retry_after = _retry_after(response.headers)
            retryable = status == 429 or (status == 503 and (retry_after is not None or read_only)) or (
                status == 504 and read_only)
            if retryable and attempt <= s.max_retries:
                wait = retry_after if retry_after is not None else s.retry_backoff * 2 ** (attempt - 1)
                if wait <= s.max_retry_wait:
                    self._sleep(wait)
                    continue
            if 200 <= status < 300:
                if not response.content:
                    return {}
                try:
                    doc = response.json()
                except ValueError:
                    raise ExchangeError(f"{cmdlet}: the service answered with something that is not JSON",
                                        cmdlet=cmdlet, status=status) from None
                return doc if isinstance(doc, dict) else {"value": doc}
            raise self._error(cmdlet, response, retry_after)

    def _error(self, cmdlet: str, response: httpx.Response, retry_after: float | None) -> ExchangeError:
        status = response.status_code
        request_id = response.headers.get("request-id") or response.headers.get("x-ms-request-id")
        try:
            doc = response.json() if response.content else {}
        except ValueError:
            doc = {"error": {"message": response.text[:2000]}}
        error = doc.get("error") if isinstance(doc, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        raw_message = str(error.get("message") or "")
        texts = [raw_message]
        for detail in error.get("details") or ():
            if isinstance(detail, dict):
                texts.append(str(detail.get("message") or ""))
        inner = error.get("innererror") or error.get("innerError") or {}
        if isinstance(inner, dict):
            texts.extend(str(inner.get(k) or "") for k in ("message", "type", "internalexception"))
        exception_type = parse_exception_type(*texts, str(code or ""))
        # The top-level message is often generic ("Error executing cmdlet"); the cmdlet's own text
        # travels in details[].message as "<id>|<exception type>|<text>".
        specific = next((t for t in texts[1:] if t and "|" in t), None) or next((t for t in texts[1:] if t), None)
        message = human_message(specific) if specific else human_message(raw_message)
        secrets = self.settings.credentials.secrets
        message = _scrub(message, secrets)
        kwargs: dict[str, Any] = {"cmdlet": cmdlet, "exception_type": exception_type, "server_message": message,
                                  "status": status, "code": code, "request_id": request_id,
                                  "retry_after": retry_after}
        if status == 429:
            return Throttled(f"{cmdlet}: still throttled after {self.settings.max_retries} retries"
                             + (f" (asked to wait {retry_after:.0f}s)" if retry_after else ""), **kwargs)
        if status == 403 and not response.content:
            return _CmdletNotAvailable(
                f"{cmdlet}: the service answered an empty 403: the cmdlet does not exist or is not in the Exchange "
                "roles assigned to the app", **kwargs)
        cls = classify_error(exception_type, message)
        if cls is ExchangeError:
            if status == 401:
                cls = Unauthorized
            elif status == 403:
                cls = AccessDenied
            elif status == 404 and not exception_type:
                cls = ObjectNotFound
            elif status >= 500:
                cls = ServiceUnavailable
        return cls(f"{cmdlet} failed" + (f": {message}" if message else f" with HTTP {status}"), **kwargs)

    def iter_invoke(self, cmdlet: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        """Run a cmdlet and yield its output objects, following ``@odata.nextLink`` page by page.

        The first page is fetched at the call, so errors surface there.
        """
        checked = check_parameters(cmdlet, params)
        body = {"CmdletInput": {"CmdletName": cmdlet,
                                "Parameters": {k: _json_value(v) for k, v in checked.items()}}}
        first = self._post(self.settings.invoke_url, body, cmdlet)
        return self._follow(first, body, cmdlet)

    def _follow(self, page: dict[str, Any], body: Mapping[str, Any], cmdlet: str) -> Iterator[dict[str, Any]]:
        while True:
            for item in page.get("value") or ():
                if isinstance(item, dict):
                    yield {k: v for k, v in item.items() if not k.startswith("@odata.")}
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            if not str(next_link).startswith(("https://", "http://")):
                next_link = self.settings.base_url.rstrip("/") + "/" + str(next_link).lstrip("/")
            page = self._post(str(next_link), body, cmdlet)

    def invoke(self, cmdlet: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run a cmdlet with validated parameters; every output object (all pages) as dicts."""
        return list(self.iter_invoke(cmdlet, **params))

    # ---- recipients and groups

    def get_recipient(self, identity: str | UUID) -> Recipient:
        found = self.invoke("Get-Recipient", Identity=_identity(identity))
        return Recipient.from_dict(only_match(found, cmdlet="Get-Recipient", identity=identity, what="recipient"))

    def iter_recipients(
        self, *, filter: OpathFilter | None = None, recipient_type_details: Sequence[str] = ()  # noqa: A002
    ) -> Iterator[Recipient]:
        params: dict[str, Any] = {"ResultSize": "Unlimited"}
        if filter is not None:
            params["Filter"] = _checked_opath(filter)
        if recipient_type_details:
            params["RecipientTypeDetails"] = [_name(t, "a recipient type", 64) for t in recipient_type_details]
        return (Recipient.from_dict(d) for d in self.iter_invoke("Get-Recipient", **params))

    def get_distribution_group(self, identity: str | UUID) -> DistributionGroup:
        found = self.invoke("Get-DistributionGroup", Identity=_identity(identity))
        return DistributionGroup.from_dict(
            only_match(found, cmdlet="Get-DistributionGroup", identity=identity, what="group"))

    def iter_distribution_groups(self, *, filter: OpathFilter | None = None) -> Iterator[DistributionGroup]:  # noqa: A002
        params: dict[str, Any] = {"ResultSize": "Unlimited"}
        if filter is not None:
            params["Filter"] = _checked_opath(filter)
        return (DistributionGroup.from_dict(d) for d in self.iter_invoke("Get-DistributionGroup", **params))

    def distribution_groups_present(self, object_ids: Sequence[str], *,
                                    max_filter_chars: int = DEPENDENCY_FILTER_CHARS) -> set[str]:
        """Which of these groups (by ExternalDirectoryObjectId) exist, lower case: one filtered read per chunk
        of ids instead of one Get-DistributionGroup each."""
        ids = list(dict.fromkeys(str(i).lower() for i in object_ids if i))
        present: set[str] = set()
        for chunk in _chunks(ids, lambda i: len(i) + 40, max_filter_chars):
            flt = opath_any(*(opath_eq("ExternalDirectoryObjectId", i) for i in chunk))
            present.update(str(d.get("ExternalDirectoryObjectId") or "").lower()
                           for d in self.iter_invoke("Get-DistributionGroup", Filter=flt, ResultSize="Unlimited"))
        return present & set(ids)

    def iter_distribution_group_members(self, identity: str | UUID) -> Iterator[Recipient]:
        docs = self.iter_invoke("Get-DistributionGroupMember", Identity=_identity(identity), ResultSize="Unlimited")
        return (Recipient.from_dict(d) for d in docs)

    def get_distribution_group_members(self, identity: str | UUID) -> list[Recipient]:
        return list(self.iter_distribution_group_members(identity))

    def new_distribution_group(
        self,
        *,
        name: str,
        alias: str,
        primary_smtp_address: str,
        display_name: str | None = None,
        managed_by: Sequence[str] = (),
        members: Sequence[str] = (),
        group_type: Literal["Distribution", "Security"] = "Distribution",
        member_join_restriction: Literal["Open", "Closed", "ApprovalRequired"] = "Closed",
        member_depart_restriction: Literal["Open", "Closed"] = "Closed",
        require_sender_authentication_enabled: bool = True,
        notes: str | None = None,
        room_list: bool = False,
        ignore_naming_policy: bool = True,
    ) -> DistributionGroup:
        """Create a cloud-only distribution group; further properties with :meth:`set_distribution_group`."""
        if group_type not in ("Distribution", "Security"):
            raise InvalidParameter(f"group_type must be Distribution or Security, not {group_type!r}")
        if member_join_restriction not in _JOIN or member_depart_restriction not in ("Open", "Closed"):
            raise InvalidParameter("member_join_restriction/member_depart_restriction: unknown value")
        params: dict[str, Any] = {
            "Name": _name(name, "Name", 64),
            "Alias": alias_value(alias),
            "PrimarySmtpAddress": smtp_address(primary_smtp_address),
            "DisplayName": _name(display_name or name, "DisplayName", 256),
            "Type": group_type,
            "MemberJoinRestriction": member_join_restriction,
            "MemberDepartRestriction": member_depart_restriction,
            "RequireSenderAuthenticationEnabled": bool(require_sender_authentication_enabled),
        }
        if managed_by:
            params["ManagedBy"] = _identities(managed_by, "managed_by")
        if members:
            params["Members"] = _identities(members, "members")
        if notes:
            params["Notes"] = _check_text(notes, "Notes")
        if room_list:
            params["RoomList"] = SWITCH
        if ignore_naming_policy:
            params["IgnoreNamingPolicy"] = SWITCH
        created = self.invoke("New-DistributionGroup", **params)
        if created:
            return DistributionGroup.from_dict(created[0])
        return self.get_distribution_group(params["PrimarySmtpAddress"])

    def set_distribution_group(
        self,
        identity: str | UUID,
        *,
        changes: Mapping[str, Any],
        bypass_security_group_manager_check: bool = False,
    ) -> None:
        """Change properties, named as Exchange names them: ``{"ManagedBy": [...], "ModerationEnabled": True}``.

        Only the parameters in :data:`SET_DISTRIBUTION_GROUP_PARAMETERS` are accepted, each checked
        for its kind; ``None`` clears a text or list property.
        """
        params = _typed_changes("Set-DistributionGroup", SET_DISTRIBUTION_GROUP_PARAMETERS, changes, allow_null=True)
        if not params:
            return
        params["Identity"] = _identity(identity)
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        self.invoke("Set-DistributionGroup", **params)

    def set_mailbox(self, identity: str | UUID, *, changes: Mapping[str, Any]) -> None:
        """Set-Mailbox with the properties of :data:`SET_MAILBOX_PARAMETERS`. A directory-synchronized mailbox takes
        them only once its Exchange attributes are cloud-managed (``IsExchangeCloudManaged``)."""
        params = _typed_changes("Set-Mailbox", SET_MAILBOX_PARAMETERS, changes, allow_null=True)
        if params:
            self.invoke("Set-Mailbox", Identity=_identity(identity), **params)

    def set_mail_contact(self, identity: str | UUID, *, changes: Mapping[str, Any]) -> None:
        """Set-MailContact (a contact created in Exchange Online, or one whose source of authority is the cloud)."""
        params = _typed_changes("Set-MailContact", SET_MAIL_CONTACT_PARAMETERS, changes, allow_null=True)
        if params:
            self.invoke("Set-MailContact", Identity=_identity(identity), **params)

    def set_recipient(self, identity: str | UUID, *, recipient_type_details: str, changes: Mapping[str, Any]) -> None:
        """The Set-* cmdlet of the recipient's type: mailboxes, mail contacts and distribution groups."""
        if recipient_type_details.endswith("Mailbox"):
            self.set_mailbox(identity, changes=changes)
        elif recipient_type_details == "MailContact":
            self.set_mail_contact(identity, changes=changes)
        elif recipient_type_details.startswith("MailUniversal") or recipient_type_details == "RoomList":
            self.set_distribution_group(identity, changes=changes)
        else:
            raise InvalidParameter(f"the portal does not change recipients of type {recipient_type_details!r}")

    def exchange_cloud_managed_mailbox_ids(self) -> set[str]:
        """The Entra object ids of the mailboxes whose Exchange attributes are managed in Exchange Online."""
        docs = self.iter_invoke("Get-Mailbox", Filter=opath_eq("IsExchangeCloudManaged", True),
                                ResultSize="Unlimited")
        return {str(d["ExternalDirectoryObjectId"]).lower() for d in docs if d.get("ExternalDirectoryObjectId")}

    def remove_distribution_group(
        self, identity: str | UUID, *, bypass_security_group_manager_check: bool = False
    ) -> None:
        params: dict[str, Any] = {"Identity": _identity(identity), "Confirm": False}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        self.invoke("Remove-DistributionGroup", **params)

    def update_distribution_group_member(
        self, identity: str | UUID, *, members: Sequence[str], bypass_security_group_manager_check: bool = False
    ) -> None:
        """Replace the whole member list (Update-DistributionGroupMember)."""
        params: dict[str, Any] = {"Identity": _identity(identity), "Members": _identities(members, "members"),
                                  "Confirm": False}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        self.invoke("Update-DistributionGroupMember", **params)

    def add_distribution_group_member(
        self, identity: str | UUID, *, member: str, bypass_security_group_manager_check: bool = False
    ) -> bool:
        """Add one member; False when it already was one."""
        params: dict[str, Any] = {"Identity": _identity(identity), "Member": _identity(member)}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        try:
            self.invoke("Add-DistributionGroupMember", **params)
        except MemberAlreadyExists:
            return False
        return True

    def remove_distribution_group_member(
        self, identity: str | UUID, *, member: str, bypass_security_group_manager_check: bool = False
    ) -> bool:
        """Remove one member; False when it was not one."""
        params: dict[str, Any] = {"Identity": _identity(identity), "Member": _identity(member), "Confirm": False}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        try:
            self.invoke("Remove-DistributionGroupMember", **params)
        except MemberNotFound:
            return False
        return True

    # ---- organisation

    def get_accepted_domains(self) -> list[AcceptedDomain]:
        return [AcceptedDomain.from_dict(d) for d in self.invoke("Get-AcceptedDomain")]

    def get_outbound_connectors(self) -> list[OutboundConnector]:
        return [OutboundConnector.from_dict(d) for d in self.invoke("Get-OutboundConnector")]

    def get_recipient_permission(
        self, identity: str | UUID, *, trustee: str | None = None, access_rights: str = "SendAs"
    ) -> list[RecipientPermission]:
        params: dict[str, Any] = {"Identity": _identity(identity), "AccessRights": _perm(access_rights)}
        if trustee:
            params["Trustee"] = _identity(trustee)
        return [RecipientPermission.from_dict(d) for d in self.invoke("Get-RecipientPermission", **params)]

    def add_recipient_permission(self, identity: str | UUID, *, trustee: str, access_rights: str = "SendAs") -> None:
        self.invoke("Add-RecipientPermission", Identity=_identity(identity), Trustee=_identity(trustee),
                    AccessRights=_perm(access_rights), Confirm=False)

    def remove_recipient_permission(self, identity: str | UUID, *, trustee: str, access_rights: str = "SendAs") -> None:
        self.invoke("Remove-RecipientPermission", Identity=_identity(identity), Trustee=_identity(trustee),
                    AccessRights=_perm(access_rights), Confirm=False)

    # ---- dependency searches

    def find_recipients_with(self, *, attribute: str, dn_or_id: str) -> list[Recipient]:
        """Every recipient whose ``attribute`` (ManagedBy, ModeratedBy, GrantSendOnBehalfTo, ...) names the object.

        Link properties are filtered by distinguished name, so an identity that is not a DN is
        resolved with Get-Recipient first. Each result says which cmdlet found it.
        """
        if attribute not in DEPENDENCY_ATTRIBUTES:
            raise InvalidParameter(f"{attribute!r} is not a dependency attribute "
                                   f"(choose from {', '.join(sorted(DEPENDENCY_ATTRIBUTES))})")
        found, refused = self.find_dependents(attributes=[attribute], dn_or_id=dn_or_id)
        if attribute in refused:
            raise InvalidParameter(refused[attribute])
        return found[attribute]

    def find_dependents(
        self, *, attributes: Sequence[str], dn_or_id: str, cloud_only: bool = False
    ) -> tuple[dict[str, list[Recipient]], dict[str, str]]:
        """Every recipient whose link property among ``attributes`` names the object, by property; and the
        properties that could not be searched, with Exchange's reason (the caller says so rather than
        assume nobody names the object).

        One ``-or`` filter per cmdlet over every property that cmdlet can filter on: most objects are
        named by nobody, so that one read per cmdlet is all it costs (instead of one per property and
        cmdlet). Only a cmdlet that answers with something (or refuses the combined filter) is asked
        again property by property, because a recipient's link values are names, not the DN the filter
        matched. ``cloud_only``: recipients synchronized from on-premises are left out by the filter itself.
        """
        return self._dependents_of(attributes=attributes, dn=self._as_dn(dn_or_id), cloud_only=cloud_only)

    def find_dependents_of_many(
        self, *, attributes: Sequence[str], dns: Sequence[str], cloud_only: bool = False,
        max_filter_chars: int = DEPENDENCY_FILTER_CHARS,
    ) -> dict[str, tuple[dict[str, list[Recipient]], dict[str, str]]]:
        """:meth:`find_dependents` for many objects (by distinguished name) at once, each DN's answer apart.

        One ``-or`` filter per cmdlet covers as many objects as ``max_filter_chars`` allows: most objects are
        named by nobody, so one read per cmdlet and chunk answers them all. Only the objects of a chunk that
        answers with something (or refuses the filter) are asked again one by one, since a recipient's link
        values are names, not the DN the filter matched."""
        by_cmdlet = self._dependency_cmdlets(attributes)
        synced = [opath_eq("IsDirSynced", False)] if cloud_only else []
        normalized = {dn: str(parse_dn(dn)) for dn in dns}
        checked = list(dict.fromkeys(normalized.values()))
        again: dict[str, set[str]] = {}
        for cmdlet, props in by_cmdlet.items():
            for chunk in _chunks(checked, lambda dn, props=props: sum(len(p) + len(dn) + 16 for p in props),
                                 max_filter_chars):
                flt = opath_all(opath_any(*(opath_eq(p, dn) for dn in chunk for p in props)), *synced)
                try:
                    if next(self.iter_invoke(cmdlet, Filter=flt, ResultSize="Unlimited"), None) is None:
                        continue
                except InvalidParameter:
                    pass  # one property this tenant cannot filter on: the objects are asked one by one
                for dn in chunk:
                    again.setdefault(dn, set()).add(cmdlet)
        # Asked again: only the cmdlets whose chunk answered; the others found nothing for the object.
        answers = {dn: self._dependents_of(attributes=attributes, dn=dn, cloud_only=cloud_only,
                                           cmdlets=again.get(dn, set())) for dn in checked}
        return {dn: answers[norm] for dn, norm in normalized.items()}

    @staticmethod
    def _dependency_cmdlets(attributes: Sequence[str]) -> dict[str, list[str]]:
        by_cmdlet: dict[str, list[str]] = {}
        for attribute in attributes:
            for cmdlet in DEPENDENCY_ATTRIBUTES.get(attribute, ()):
                by_cmdlet.setdefault(cmdlet, []).append(attribute)
        return by_cmdlet

    def _dependents_of(
        self, *, attributes: Sequence[str], dn: str, cloud_only: bool, cmdlets: set[str] | None = None
    ) -> tuple[dict[str, list[Recipient]], dict[str, str]]:
        """``cmdlets``: only these are asked (the others are known to find nothing)."""
        refused = {a: f"{a!r} is not a dependency attribute" for a in attributes if a not in DEPENDENCY_ATTRIBUTES}
        by_cmdlet = {c: props for c, props in self._dependency_cmdlets(attributes).items()
                     if cmdlets is None or c in cmdlets}
        synced = [opath_eq("IsDirSynced", False)] if cloud_only else []
        found: dict[str, list[Recipient]] = {a: [] for a in attributes if a not in refused}
        seen: set[tuple[str, str]] = set()

        def query(cmdlet: str, *props: str) -> Iterator[dict[str, Any]]:
            flt = opath_all(opath_any(*(opath_eq(p, dn) for p in props)), *synced)
            return self.iter_invoke(cmdlet, Filter=flt, ResultSize="Unlimited")

        for cmdlet, props in by_cmdlet.items():
            try:
                docs: Iterator[dict[str, Any]] = query(cmdlet, *props)
                head = next(docs, None)
                if head is None:
                    continue
            except InvalidParameter:
                head = None  # one property this tenant cannot filter on: find which, one by one
            for prop in props:
                try:
                    one = head is not None and len(props) == 1  # the combined answer is this property's
                    docs = itertools.chain([head], docs) if one else query(cmdlet, prop)
                    for doc in docs:
                        recipient = Recipient.from_dict(doc, found_by=cmdlet)
                        key = (recipient.guid or recipient.identity or recipient.distinguished_name or "").lower()
                        if not key or (prop, key) not in seen:
                            seen.add((prop, key))
                            found[prop].append(recipient)
                except InvalidParameter as exc:
                    refused[prop] = str(exc)
        return found, refused

    def _as_dn(self, dn_or_id: str) -> str:
        if not isinstance(dn_or_id, str) or not dn_or_id.strip():
            raise InvalidParameter("dn_or_id is required")
        if "=" in dn_or_id:
            with contextlib.suppress(InvalidDn):
                return str(parse_dn(dn_or_id))
        recipient = self.get_recipient(dn_or_id)
        if not recipient.distinguished_name:
            raise ExchangeError(f"Get-Recipient {dn_or_id} returned no DistinguishedName to filter on")
        return recipient.distinguished_name

    # ---- connectivity check

    def check(self) -> CloudCheckReport:
        """Token obtained (with Exchange.ManageAsApp), one cheap cmdlet (Get-AcceptedDomain); never raises."""
        s = self.settings
        items: list[CheckItem] = []
        details: dict[str, Any] = {"endpoint": s.invoke_url, "client_id": s.credentials.client_id}
        try:
            access = self._tokens.acquire(s.scope)
        except TokenError as exc:
            items.append(CheckItem("token", False, exc.message))
            return CloudCheckReport(False, "Exchange Online", s.invoke_url, tuple(items), details)
        roles = sorted(str(r) for r in access.claims.get("roles") or ())
        details["roles"] = roles
        details["tenant_id"] = access.claims.get("tid")
        if roles and "Exchange.ManageAsApp" not in roles:
            items.append(CheckItem("token", False, f"token obtained, but the app lacks Exchange.ManageAsApp "
                                                   f"(roles: {', '.join(roles)})"))
        else:
            items.append(CheckItem("token", True,
                                   f"token for {s.scope}" + (f"; roles: {', '.join(roles)}" if roles else "")))
        try:
            domains = self.get_accepted_domains()
            default = next((d.domain_name for d in domains if d.default), None)
            details["default_domain"] = default
            items.append(CheckItem("Get-AcceptedDomain", True,
                                   f"{len(domains)} accepted domain(s)" + (f", default {default}" if default else "")))
        except ExchangeError as exc:
            items.append(CheckItem("Get-AcceptedDomain", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Exchange Online", s.invoke_url, tuple(items), details)


def _chunks(items: Sequence[str], cost: Callable[[str], int], limit: int) -> Iterator[list[str]]:
    """``items`` in order, in runs whose summed ``cost`` stays within ``limit`` (one item at least per run)."""
    chunk: list[str] = []
    used = 0
    for item in items:
        if chunk and used + cost(item) > limit:
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += cost(item)
    if chunk:
        yield chunk


def _perm(access_rights: str) -> str:
    if access_rights not in ("SendAs",):
        raise InvalidParameter(f"access_rights must be SendAs, not {access_rights!r}")
    return access_rights
