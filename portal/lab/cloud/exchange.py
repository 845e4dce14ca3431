"""Exchange Online admin API: ``POST /adminapi/beta/{tenant}/InvokeCommand`` and the cmdlets the
portal uses (recipients, distribution groups and members, accepted domains, outbound
connectors, recipient permissions)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from portal.lab.opath import CLOUD, OpathError, parse_opath
from portal.lab.opath import matches as opath_matches

from .api import ApiError, ApiRequest, ApiResponse
from .auth import EXCHANGE_APP_ID, EXCHANGE_RESOURCE, TokenError, _b64url, _b64url_decode, verify_access_token
from .cmdlets import _COMMON_PARAMETERS, _bind_parameters, _Cmdlet, _cmdlet, _truthy
from .errors import (
    ExchangeError,
    ambiguous,
    command_not_found,
    exchange_error_response,
    member_not_found,
    not_found,
    synced_object,
)
from .store.common import (
    CONTACT_RECIPIENT_TYPES,
    GROUP_RECIPIENT_TYPES,
    MAIL_RECIPIENT_TYPES,
    MAIL_USER_RECIPIENT_TYPES,
    MAILBOX_RECIPIENT_TYPES,
    RECIPIENT_LINK_PROPERTIES,
    ConflictError,
)

EXCHANGE_DEFAULT_PAGE = 1000
EXCHANGE_DEFAULT_RESULT_SIZE = 1000


class ExchangeMixin:
    """The InvokeCommand endpoint and its cmdlets; part of ``LabCloud``."""

    def _exchange_entry(self, req: ApiRequest) -> ApiResponse:
        match = re.fullmatch(r"/adminapi/beta/([^/]+)/InvokeCommand", req.path, re.IGNORECASE)
        if not match:
            raise self._not_found_path(req)
        challenge = {"WWW-Authenticate": f'Bearer client_id="{EXCHANGE_APP_ID}", trusted_issuers="00000001-0000-0000-'
                                         'c000-000000000000@*", token_types="app_asserted_user_v1 '
                                         'service_asserted_app_v1", authorization_uri="https://login.microsoftonline.'
                                         'com/common/oauth2/authorize", error="invalid_token"'}
        header = req.headers.get("authorization", "")
        # Exchange answers token problems with an empty 401 and its challenge header.
        if not header.lower().startswith("bearer "):
            raise ApiError(ApiResponse(401, None, challenge))
        try:
            claims = verify_access_token(header[7:].strip(), key=self._key)
        except TokenError:
            raise ApiError(ApiResponse(401, None, challenge)) from None
        if (str(claims.get("tid", "")).lower() != self.tenant_id or claims.get("aud") not in
                {EXCHANGE_RESOURCE, EXCHANGE_APP_ID} or not self._is_our_tenant(match.group(1))):
            raise ApiError(ApiResponse(401, None, challenge))
        if "Exchange.ManageAsApp" not in (claims.get("roles") or []):
            raise ApiError(ApiResponse(403, {"error": {"code": "Forbidden", "message": "The role assigned to "
                                                       "application isn't supported in this scenario."}}))
        req.claims = claims
        self._apply_faults("exchange", req)
        if req.method != "POST":
            raise ApiError(ApiResponse(405, {"error": {"code": "MethodNotAllowed", "message": "Use POST."}}))
        try:
            payload = req.json()
        except ValueError:
            payload = None
        cmdlet_input = payload.get("CmdletInput") if isinstance(payload, dict) else None
        if not isinstance(cmdlet_input, dict) or not isinstance(cmdlet_input.get("CmdletName"), str):
            raise ApiError(ApiResponse(400, {"error": {"code": "BadRequest", "message": "The request body must be "
                                       "{\"CmdletInput\": {\"CmdletName\": ..., \"Parameters\": {...}}}."}}))
        name = cmdlet_input["CmdletName"].strip()
        params = cmdlet_input.get("Parameters") or {}
        if not isinstance(params, dict):
            raise ApiError(ApiResponse(400, {"error": {"code": "BadRequest", "message": "Parameters must be an "
                                       "object."}}))
        spec = _EXCHANGE_CMDLETS.get(name.lower())
        if spec is None:
            if self.store.settings().exchange_unknown_cmdlet == "blank403":
                # What the service has been measured to answer (a body of NUL bytes); the lab sends none.
                return ApiResponse(403, None)
            return exchange_error_response(ExchangeError("System.Management.Automation.CommandNotFoundException",
                                                         command_not_found(name)), req)
        try:
            bound = _bind_parameters(spec, params)
            result = spec.handler(self, bound, req)
        except ExchangeError as error:
            return exchange_error_response(error, req)
        except ConflictError as conflict:
            return exchange_error_response(ExchangeError(
                "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                f'The proxy address "{conflict.value}" is already being used by the proxy addresses or '
                "LegacyExchangeDN. Please choose another proxy address."), req)
        rows, warnings = (result if isinstance(result, tuple) else (result, []))
        return self._exchange_page(req, name, rows, warnings)

    def _exchange_page(self, req: ApiRequest, name: str, rows: list[dict[str, Any]],
                       warnings: list[str]) -> ApiResponse:
        prefer = req.headers.get("prefer", "")
        size_match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = max(1, min(int(size_match.group(1)), 10000)) if size_match else EXCHANGE_DEFAULT_PAGE
        offset = 0
        skip = req.param("$skiptoken")
        if skip:
            with contextlib.suppress(ValueError):
                offset = int(json.loads(_b64url_decode(skip))["o"])
        page = rows[offset:offset + size]
        body: dict[str, Any] = {
            "@odata.context": f"{req.base_url}/adminapi/beta/{self.tenant_id}/$metadata#Collection("
                              "Exchange.GenericHashTable)",
            "@adminapi.warnings": warnings if offset == 0 else [],
        }
        if offset + size < len(rows):
            token = _b64url(json.dumps({"o": offset + size}).encode())
            body["@odata.nextLink"] = f"{req.base_url}/adminapi/beta/{self.tenant_id}/InvokeCommand?$skiptoken={token}"
        body["value"] = page
        headers = {"X-CmdletName": name}
        if warnings and offset == 0:
            headers["X-Warnings"] = " ".join(warnings)
        return ApiResponse(200, body, headers)

    # -- recipient helpers

    def _resolve_one(self, identity: Any, types: Iterable[str] | None, *, member: bool = False) -> dict[str, Any]:
        text = str(identity)
        found = self.store.resolve_recipients(identity=text, types=types)
        if not found:
            raise member_not_found(text) if member else not_found(text)
        if len(found) > 1:
            raise ambiguous(text)
        return found[0]

    def _resolve_many(self, identities: Any) -> list[str]:
        values = identities if isinstance(identities, list) else [identities]
        return [self._resolve_one(v, None, member=True)["@id"] for v in values if v not in (None, "")]

    def _render(self, rec: Mapping[str, Any], names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A recipient as the cmdlets return it: link ids become names, Identity/Id the name."""
        names = names if names is not None else self._link_names([rec])
        # The identifying properties first, as the cmdlets list them.
        out = {k: rec[k] for k in _RENDER_FIRST if k in rec}
        out.update((k, v) for k, v in rec.items() if not k.startswith("@") and k not in out)
        for prop in RECIPIENT_LINK_PROPERTIES:
            out[prop] = [names.get(i, i) for i in rec.get(prop) or []]
        groups = self._group_ids_among([i for prop in ("AcceptMessagesOnlyFromSendersOrMembers",
                                                       "RejectMessagesFromSendersOrMembers")
                                        for i in rec.get(prop) or []])
        for verb in ("Accept", "Reject"):
            key = ("AcceptMessagesOnlyFromSendersOrMembers" if verb == "Accept"
                   else "RejectMessagesFromSendersOrMembers")
            base = "AcceptMessagesOnlyFrom" if verb == "Accept" else "RejectMessagesFrom"
            out[base] = [names.get(i, i) for i in rec.get(key) or [] if i not in groups]
            out[f"{base}DLMembers"] = [names.get(i, i) for i in rec.get(key) or [] if i in groups]
        out["Identity"] = rec["Name"]
        out["Id"] = rec["Name"]
        return out

    def _group_ids_among(self, ids: Sequence[str]) -> set[str]:
        found = self.store.recipients_by_ids(ids)
        return {i for i, r in found.items() if r["RecipientTypeDetails"] in GROUP_RECIPIENT_TYPES}

    def _link_names(self, recs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        ids = {i for rec in recs for prop in RECIPIENT_LINK_PROPERTIES for i in rec.get(prop) or []}
        return {i: r["Name"] for i, r in self.store.recipients_by_ids(ids).items()}

    def _render_all(self, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = self._link_names(recs)
        return [self._render(rec, names) for rec in recs]

    def _opath_getter(self, rec: Mapping[str, Any], dns: dict[str, str]) -> Callable[[str], Any]:
        def get(prop: str) -> Any:
            if prop in RECIPIENT_LINK_PROPERTIES:
                return [dns.get(i, "") for i in rec.get(prop) or []]
            if prop == "MemberOfGroup":
                object_id = rec.get("ExternalDirectoryObjectId")
                if not object_id:
                    return []
                group_ids = self.store.group_ids_of(member_id=object_id)
                return [r["DistinguishedName"] for r in self.store.recipients_by_object_ids(group_ids).values()]
            if prop in {"AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers"}:
                return [dns.get(i, "") for i in rec.get("AcceptMessagesOnlyFromSendersOrMembers") or []]
            if prop in {"RejectMessagesFrom", "RejectMessagesFromDLMembers"}:
                return [dns.get(i, "") for i in rec.get("RejectMessagesFromSendersOrMembers") or []]
            if prop == "Identity":
                return rec.get("Name")
            return rec.get(prop)

        return get

    def _query_recipients(self, bound: Mapping[str, Any], types: frozenset[str], cmdlet: str
                          ) -> tuple[list[dict[str, Any]], list[str]]:
        if "Identity" in bound and "Filter" in bound:
            raise ExchangeError("System.Management.Automation.ParameterBindingException",
                                "Parameter set cannot be resolved using the specified named parameters.")
        wanted_types = types
        if "RecipientTypeDetails" in bound:
            requested = bound["RecipientTypeDetails"]
            requested = requested if isinstance(requested, list) else [requested]
            wanted_types = frozenset(t for t in requested if t in types) or frozenset({"__none__"})
        if "Identity" in bound:
            found = self.store.resolve_recipients(identity=str(bound["Identity"]), types=wanted_types)
            if not found:
                raise not_found(str(bound["Identity"]))
            return self._render_all(found), []
        recs = list(self.store.iter_recipients(types=wanted_types))
        if bound.get("ManagedBy"):
            manager = self._resolve_one(bound["ManagedBy"], None, member=True)["@id"]
            recs = [rec for rec in recs if manager in (rec.get("ManagedBy") or [])]
        if bound.get("Anr"):
            # Ambiguous name resolution: a prefix of the name, display name, alias or an address.
            prefix = str(bound["Anr"]).lower()
            recs = [rec for rec in recs if any(str(rec.get(k) or "").lower().startswith(prefix) for k in
                                               ("Name", "DisplayName", "Alias", "PrimarySmtpAddress"))]
        if "Filter" in bound and bound["Filter"]:
            known = {p.lower(): p for rec in recs[:1] for p in rec if not p.startswith("@")}
            known.update({p.lower(): p for p in _OPATH_EXTRA})
            try:
                tree = parse_opath(str(bound["Filter"]), dialect=CLOUD, resolve=lambda name: known.get(name.lower())
                                   or _FILTERABLE_ALWAYS.get(name.lower()))
            except OpathError as exc:
                raise ExchangeError("System.Management.Automation.ParameterBindingException", exc.message) from None
            link_ids = {i for rec in recs for prop in RECIPIENT_LINK_PROPERTIES for i in rec.get(prop) or []}
            dns = {i: r["DistinguishedName"] for i, r in self.store.recipients_by_ids(link_ids).items()}
            recs = [rec for rec in recs if opath_matches(tree, self._opath_getter(rec, dns))]
        if bound.get("SortBy"):
            key = str(bound["SortBy"]).lstrip("-+")
            recs.sort(key=lambda rec: str(rec.get(key) or "").lower(), reverse=str(bound["SortBy"]).startswith("-"))
        size, unlimited = _result_size(bound)
        warnings = []
        if not unlimited and len(recs) > size:
            recs = recs[:size]
            # Exchange's warning when -ResultSize (default 1000) cut the output.
            warnings.append("There are more results available than are currently displayed. To view them, increase "
                            "the value for the ResultSize parameter.")
        return self._render_all(recs), warnings

    def _ensure_cloud_managed(self, rec: Mapping[str, Any], cmdlet: str, prop: str | None) -> None:
        if rec.get("IsDirSynced"):
            raise synced_object(cmdlet, prop, rec["Name"])

    def _check_smtp(self, address: str) -> None:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                f'The email address "{address}" isn\'t correct. Please use this format: user name, the '
                                "@ sign, followed by the domain name. For example, tonysmith@contoso.com or "
                                "tony.smith@contoso.com.")
        domain = address.split("@", 1)[1].lower()
        accepted = {d["DomainName"].lower() for d in self.store.list_accepted_domains()}
        if domain not in accepted:
            # Lab wording; the exact Exchange text for a non-accepted domain was not confirmed.
            raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                f"The domain '{domain}' of the address '{address}' isn't an accepted domain for your "
                                "organization.")

    def _check_address_free(self, addresses: Iterable[str], own_ids: Iterable[str]) -> None:
        own = {i.lower() for i in own_ids if i}
        for address in addresses:
            if not address.lower().startswith("smtp:"):
                continue
            for rec in self.store.resolve_recipients(identity=address):
                if rec["@id"] not in own and rec.get("ExternalDirectoryObjectId") not in own:
                    raise ExchangeError(
                        "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                        f'The proxy address "{address}" is already being used by the proxy addresses or '
                        f'LegacyExchangeDN of "{rec["Name"]}". Please choose another proxy address.')
            for obj in self.store.find_objects_by_address(address=address):
                if obj["id"] not in own:
                    raise ExchangeError(
                        "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                        f'The proxy address "{address}" is already being used by the proxy addresses or '
                        f'LegacyExchangeDN of "{obj.get("mailNickname") or obj["id"]}". Please choose another proxy '
                        "address.")

    def _address_updates(self, rec: Mapping[str, Any], bound: Mapping[str, Any]) -> dict[str, Any]:
        """EmailAddresses / PrimarySmtpAddress / WindowsEmailAddress of a Set-* cmdlet: one primary SMTP address,
        every SMTP address well formed in an accepted domain and held by no other recipient."""
        addresses = list(rec["EmailAddresses"])
        if "EmailAddresses" in bound:
            addresses = _apply_multi(addresses, bound["EmailAddresses"], _prefixed)
        primary = rec["PrimarySmtpAddress"]
        if "PrimarySmtpAddress" in bound or "WindowsEmailAddress" in bound:
            primary = str(bound.get("PrimarySmtpAddress") or bound.get("WindowsEmailAddress"))
            self._check_smtp(primary)
            addresses = [f"smtp:{a[5:]}" if a.startswith("SMTP:") else a for a in addresses]
            addresses = [f"SMTP:{primary}", *[a for a in addresses if a.lower() != f"smtp:{primary}".lower()]]
        elif "EmailAddresses" in bound:
            primaries = [a for a in addresses if a.startswith("SMTP:")]
            if len(primaries) != 1:
                raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                    "The e-mail address list must contain exactly one primary SMTP address "
                                    "(prefix \"SMTP:\").")
            primary = primaries[0][5:]
            for address in addresses:
                if address.lower().startswith("smtp:"):
                    self._check_smtp(address[5:])
        if "EmailAddresses" not in bound and primary == rec["PrimarySmtpAddress"]:
            return {}
        self._check_address_free(addresses, [rec["@id"], rec.get("ExternalDirectoryObjectId") or ""])
        return {"EmailAddresses": addresses, "PrimarySmtpAddress": primary}

    def cmd_get_recipient(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, MAIL_RECIPIENT_TYPES, "Get-Recipient")

    def cmd_get_mailbox(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, MAILBOX_RECIPIENT_TYPES, "Get-Mailbox")

    def cmd_get_mail_user(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, MAIL_USER_RECIPIENT_TYPES, "Get-MailUser")

    def cmd_get_mail_contact(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, CONTACT_RECIPIENT_TYPES, "Get-MailContact")

    def cmd_get_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, GROUP_RECIPIENT_TYPES, "Get-DistributionGroup")

    def cmd_get_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        member_ids = self.store.member_ids(group_id=group["ExternalDirectoryObjectId"]) \
            if group.get("ExternalDirectoryObjectId") else []
        by_object = self.store.recipients_by_object_ids(member_ids)
        rows: list[dict[str, Any]] = []
        names = self._link_names(by_object.values())
        for object_id in member_ids:
            rec = by_object.get(object_id)
            if rec is not None:
                rows.append(self._render(rec, names))
                continue
            obj = self.store.get_object(object_id=object_id)
            if obj is None:
                continue
            # A member without an Exchange recipient shows as a plain User.
            name = obj.get("mailNickname") or obj.get("displayName") or object_id
            rows.append({"Name": name, "DisplayName": obj.get("displayName"), "Alias": obj.get("mailNickname"),
                         "Identity": name, "Id": name, "PrimarySmtpAddress": obj.get("mail") or "",
                         "RecipientType": "User", "RecipientTypeDetails": "User",
                         "ExternalDirectoryObjectId": object_id, "IsDirSynced": bool(obj.get("onPremisesSyncEnabled")),
                         "EmailAddresses": []})
        size, unlimited = _result_size(bound)
        warnings = []
        if not unlimited and len(rows) > size:
            rows = rows[:size]
            warnings.append("There are more results available than are currently displayed. To view them, increase "
                            "the value for the ResultSize parameter.")
        return rows, warnings

    def cmd_new_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        name = str(bound["Name"]).strip()
        if self.store.resolve_recipients(identity=name):
            # Lab wording for a name already taken (Exchange's exact text was not confirmed).
            raise ExchangeError("Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                                f'The name "{name}" is already being used. Please try another name.')
        alias = str(bound.get("Alias") or re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", "", name))[:64]
        domain = self.store.default_domain() or self.initial_domain
        primary = str(bound.get("PrimarySmtpAddress") or f"{alias}@{domain}")
        self._check_smtp(primary)
        addresses = [f"SMTP:{primary}"]
        moera = f"smtp:{alias}@{self.initial_domain}"
        if moera.lower() != f"smtp:{primary}".lower():
            addresses.append(moera)
        self._check_address_free(addresses, [])
        kind = str(bound.get("Type") or "Distribution")
        if kind.lower() not in {"distribution", "security"}:
            raise ExchangeError("System.Management.Automation.ParameterBindingException",
                                f"Cannot bind parameter 'Type'. Cannot convert value \"{kind}\" to type "
                                "\"Microsoft.Exchange.Data.Directory.Recipient.GroupType\". Error: \"Unable to match "
                                f"the identifier name {kind} to a valid enumerator name. Specify one of the following "
                                "enumerator names and try again:\nDistribution, Security\"")
        security = kind.lower() == "security"
        details = "RoomList" if _truthy(bound.get("RoomList")) else \
            ("MailUniversalSecurityGroup" if security else "MailUniversalDistributionGroup")
        managed_by = self._resolve_many(bound["ManagedBy"]) if bound.get("ManagedBy") else []
        members = self._resolve_many(bound["Members"]) if bound.get("Members") else []
        moderated_by = self._resolve_many(bound["ModeratedBy"]) if bound.get("ModeratedBy") else []
        properties: dict[str, Any] = {"ManagedBy": managed_by, "ModeratedBy": moderated_by}
        for key in ("MemberJoinRestriction", "MemberDepartRestriction", "SendModerationNotifications"):
            if key in bound:
                properties[key] = str(bound[key])
        for key in ("ModerationEnabled", "RequireSenderAuthenticationEnabled", "BypassNestedModerationEnabled",
                    "HiddenGroupMembershipEnabled"):
            if key in bound:
                properties[key] = _truthy(bound[key])
        if bound.get("Description"):
            properties["Description"] = [str(bound["Description"])]
        display = str(bound.get("DisplayName") or name)
        with self.store.transaction():
            group = self.store.create_group(
                display_name=display, mail_enabled=True, security_enabled=security, mail=primary,
                mail_nickname=alias, proxy_addresses=addresses,
                extra={"description": str(bound["Description"]) if bound.get("Description") else None})
            rec = self.store.create_recipient(
                recipient_type_details=details, name=name, alias=alias, primary_smtp_address=primary,
                email_addresses=addresses, object_id=group["id"], display_name=display, properties=properties)
            member_objects = [self.store.get_recipient(recipient_id=m) for m in members]
            if _truthy(bound.get("CopyOwnerToMember")):
                member_objects += [self.store.get_recipient(recipient_id=m) for m in managed_by]
            for member in member_objects:
                if member and member.get("ExternalDirectoryObjectId"):
                    self.store.add_member(group_id=group["id"], member_id=member["ExternalDirectoryObjectId"])
        return [self._render(rec)]

    def cmd_set_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        rec = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        changed = [k for k in bound if k not in {"Identity", *_COMMON_PARAMETERS, "BypassSecurityGroupManagerCheck",
                                                 "ForceUpgrade", "IgnoreNamingPolicy"}]
        if changed:
            self._ensure_cloud_managed(rec, "Set-DistributionGroup", changed[0])
        updates: dict[str, Any] = {}
        for key in ("Name", "DisplayName", "Alias", "MemberJoinRestriction", "MemberDepartRestriction",
                    "SendModerationNotifications", "MailTip", *(f"CustomAttribute{i}" for i in range(1, 16))):
            if key in bound:
                updates[key] = "" if bound[key] is None and key.startswith("Custom") else bound[key]
        for key in ("HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled", "ModerationEnabled",
                    "ReportToManagerEnabled", "ReportToOriginatorEnabled", "SendOofMessageToOriginatorEnabled",
                    "BypassNestedModerationEnabled"):
            if key in bound:
                updates[key] = _truthy(bound[key])
        for key in (f"ExtensionCustomAttribute{i}" for i in range(1, 6)):
            if key in bound:
                updates[key] = _apply_multi(rec.get(key) or [], bound[key], lambda v: v)
        if "Description" in bound:
            updates["Description"] = [str(bound["Description"])] if bound["Description"] else []
        for prop in RECIPIENT_LINK_PROPERTIES:
            if prop in bound:
                updates[prop] = _apply_multi(rec.get(prop) or [], bound[prop],
                                             lambda v: self._resolve_one(v, None, member=True)["@id"])
        if "Name" in updates and str(updates["Name"]).lower() != rec["Name"].lower() and \
                self.store.resolve_recipients(identity=str(updates["Name"])):
            raise ExchangeError("Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                                f'The name "{updates["Name"]}" is already being used. Please try another name.')
        updates.update(self._address_updates(rec, bound))
        if updates:
            with self.store.transaction():
                updated = self.store.update_recipient(recipient_id=rec["@id"], properties=updates)
                self._sync_recipient_object(updated)
        return []

    def _set_recipient(self, bound: dict[str, Any], types: frozenset[str], cmdlet: str, *,
                       exchange_cloud_manageable: bool) -> Any:
        """Set-Mailbox / Set-MailContact: the address and naming properties the portal changes. A synced
        recipient refuses them unless its Exchange attributes are cloud-managed (``IsExchangeCloudManaged``,
        mailboxes only) or its source of authority moved to the cloud (then it is not IsDirSynced any more)."""
        rec = self._resolve_one(bound["Identity"], types)
        changed = [k for k in bound if k not in {"Identity", *_COMMON_PARAMETERS, "IsExchangeCloudManaged"}]
        updates: dict[str, Any] = {}
        if "IsExchangeCloudManaged" in bound:
            if not exchange_cloud_manageable or not rec.get("IsDirSynced"):
                raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                    f"IsExchangeCloudManaged can only be set on a directory-synchronized mailbox; "
                                    f"'{rec['Name']}' is not one.")
            updates["IsExchangeCloudManaged"] = _truthy(bound["IsExchangeCloudManaged"])
        cloud_managed = updates.get("IsExchangeCloudManaged", rec.get("IsExchangeCloudManaged"))
        if changed and not cloud_managed:
            self._ensure_cloud_managed(rec, cmdlet, changed[0])
        for key in ("DisplayName", "Alias", "ExternalEmailAddress", "HiddenFromAddressListsEnabled",
                    *(f"CustomAttribute{i}" for i in range(1, 16))):
            if key in bound:
                updates[key] = _truthy(bound[key]) if key == "HiddenFromAddressListsEnabled" else bound[key]
        updates.update(self._address_updates(rec, bound))
        if updates:
            with self.store.transaction():
                updated = self.store.update_recipient(recipient_id=rec["@id"], properties=updates)
                self._sync_recipient_object(updated)
        return []

    def _sync_recipient_object(self, rec: Mapping[str, Any]) -> None:
        """Exchange Online writes a recipient's names and addresses to its Entra object (forward sync): a cloud DL's
        group as much as a mailbox's or a contact's user or contact."""
        object_id = rec.get("ExternalDirectoryObjectId")
        if not object_id:
            return
        smtp = [a for a in rec["EmailAddresses"] if a.lower().startswith("smtp:")]
        with contextlib.suppress(Exception):
            self.store.update_object(object_id=object_id, properties={
                "displayName": rec.get("DisplayName"), "mail": rec["PrimarySmtpAddress"], "mailNickname": rec["Alias"],
                "proxyAddresses": smtp})

    def cmd_set_mailbox(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._set_recipient(bound, MAILBOX_RECIPIENT_TYPES, "Set-Mailbox", exchange_cloud_manageable=True)

    def cmd_set_mail_contact(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._set_recipient(bound, CONTACT_RECIPIENT_TYPES, "Set-MailContact",
                                   exchange_cloud_manageable=False)

    def cmd_remove_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        rec = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        self._ensure_cloud_managed(rec, "Remove-DistributionGroup", None)
        with self.store.transaction():
            if rec.get("ExternalDirectoryObjectId"):
                self.store.delete_object(object_id=rec["ExternalDirectoryObjectId"])
            self.store.delete_recipient(recipient_id=rec["@id"])
        return []

    def _member_change(self, bound: dict[str, Any], cmdlet: str) -> tuple[dict[str, Any], str]:
        group = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        self._ensure_cloud_managed(group, cmdlet, "Members")
        if not group.get("ExternalDirectoryObjectId"):
            raise ExchangeError("System.InvalidOperationException", f"The group '{group['Name']}' has no directory "
                                "object in the lab.")
        return group, group["ExternalDirectoryObjectId"]

    def _member_object_id(self, identity: Any) -> tuple[str, str]:
        rec = self._resolve_one(identity, None, member=True)
        if not rec.get("ExternalDirectoryObjectId"):
            raise ExchangeError("System.InvalidOperationException", f"The recipient '{rec['Name']}' has no directory "
                                "object in the lab.")
        return rec["ExternalDirectoryObjectId"], rec["Name"]

    def cmd_add_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group, group_id = self._member_change(bound, "Add-DistributionGroupMember")
        member_id, member_name = self._member_object_id(bound["Member"])
        if not self.store.add_member(group_id=group_id, member_id=member_id):
            raise ExchangeError("Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException",
                                f'The recipient "{member_name}" is already a member of the group "{group["Name"]}".')
        return []

    def cmd_remove_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group, group_id = self._member_change(bound, "Remove-DistributionGroupMember")
        member_id, member_name = self._member_object_id(bound["Member"])
        if not self.store.remove_member(group_id=group_id, member_id=member_id):
            raise ExchangeError("Microsoft.Exchange.Management.Tasks.MemberNotFoundException",
                                f'The recipient "{member_name}" isn\'t a member of the group "{group["Name"]}".')
        return []

    def cmd_update_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group, group_id = self._member_change(bound, "Update-DistributionGroupMember")
        raw = bound.get("Members")
        values = raw if isinstance(raw, list) else ([] if raw in (None, "") else [raw])
        member_ids = [self._member_object_id(v)[0] for v in values]
        self.store.set_members(group_id=group_id, member_ids=member_ids)
        return []

    def cmd_get_accepted_domain(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        domains = self.store.list_accepted_domains()
        if "Identity" in bound:
            wanted = str(bound["Identity"]).lower()
            domains = [d for d in domains if d["Name"].lower() == wanted or d["DomainName"].lower() == wanted]
            if not domains:
                raise not_found(str(bound["Identity"]))
        return domains

    def cmd_get_outbound_connector(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        connectors = self.store.list_outbound_connectors()
        if "Identity" in bound:
            wanted = str(bound["Identity"]).lower()
            connectors = [c for c in connectors if c["Name"].lower() == wanted]
            if not connectors:
                raise not_found(str(bound["Identity"]))
        return connectors

    def _permission_row(self, perm: Mapping[str, str], recs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        target = recs.get(perm["recipient_id"], {})
        trustee = recs.get(perm["trustee_id"], {})
        return {
            "Identity": target.get("Name", perm["recipient_id"]),
            "Trustee": trustee.get("UserPrincipalName") or trustee.get("PrimarySmtpAddress") or perm["trustee_id"],
            "AccessControlType": "Allow",
            "AccessRights": [perm["access_right"]],
            "IsInherited": False,
            "InheritanceType": "None",
        }

    def cmd_get_recipient_permission(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        recipient_id = self._resolve_one(bound["Identity"], None)["@id"] if "Identity" in bound else None
        trustee_id = self._resolve_one(bound["Trustee"], None, member=True)["@id"] if "Trustee" in bound else None
        perms = self.store.list_recipient_permissions(recipient_id=recipient_id, trustee_id=trustee_id)
        if "AccessRights" in bound:
            rights = bound["AccessRights"] if isinstance(bound["AccessRights"], list) else [bound["AccessRights"]]
            perms = [p for p in perms if p["access_right"] in rights]
        recs = self.store.recipients_by_ids({p["recipient_id"] for p in perms} | {p["trustee_id"] for p in perms})
        rows = [self._permission_row(p, recs) for p in perms]
        size, unlimited = _result_size(bound)
        return rows if unlimited else rows[:size]

    def cmd_add_recipient_permission(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        target = self._resolve_one(bound["Identity"], None)
        trustee = self._resolve_one(bound["Trustee"], None, member=True)
        rights = bound["AccessRights"] if isinstance(bound["AccessRights"], list) else [bound["AccessRights"]]
        for right in rights:
            if str(right) != "SendAs":
                raise ExchangeError("System.Management.Automation.ParameterBindingException",
                                    f"Cannot bind parameter 'AccessRights'. Cannot convert value \"{right}\" to type "
                                    "\"Microsoft.Exchange.Management.RecipientTasks.RecipientAccessRight\". Error: "
                                    f"\"Unable to match the identifier name {right} to a valid enumerator name. "
                                    "Specify one of the following enumerator names and try again:\nSendAs\"")
        rows = []
        for right in rights:
            self.store.add_recipient_permission(recipient_id=target["@id"], trustee_id=trustee["@id"],
                                                access_right=str(right))
            rows.append(self._permission_row({"recipient_id": target["@id"], "trustee_id": trustee["@id"],
                                              "access_right": str(right)},
                                             {target["@id"]: target, trustee["@id"]: trustee}))
        return rows


_RECIPIENT_QUERY = ("Identity", "Filter", "ResultSize", "RecipientTypeDetails", "Anr", "SortBy")
_GROUP_SET = (
    "Identity", "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "WindowsEmailAddress", "EmailAddresses",
    *RECIPIENT_LINK_PROPERTIES, "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled",
    "ModerationEnabled", "MemberJoinRestriction", "MemberDepartRestriction", "SendModerationNotifications",
    "ReportToManagerEnabled", "ReportToOriginatorEnabled", "SendOofMessageToOriginatorEnabled",
    "BypassNestedModerationEnabled", "MailTip", "Description", "BypassSecurityGroupManagerCheck", "ForceUpgrade",
    "IgnoreNamingPolicy", *(f"CustomAttribute{i}" for i in range(1, 16)),
    *(f"ExtensionCustomAttribute{i}" for i in range(1, 6)),
)

_RECIPIENT_SET = ("Identity", "DisplayName", "Alias", "PrimarySmtpAddress", "WindowsEmailAddress", "EmailAddresses",
                  "HiddenFromAddressListsEnabled", "IsExchangeCloudManaged",
                  *(f"CustomAttribute{i}" for i in range(1, 16)))

_EXCHANGE_CMDLETS: dict[str, _Cmdlet] = dict([
    _cmdlet("Get-Recipient", ExchangeMixin.cmd_get_recipient, (*_RECIPIENT_QUERY, "RecipientType")),
    _cmdlet("Get-Mailbox", ExchangeMixin.cmd_get_mailbox, _RECIPIENT_QUERY),
    _cmdlet("Get-MailUser", ExchangeMixin.cmd_get_mail_user, _RECIPIENT_QUERY),
    _cmdlet("Get-MailContact", ExchangeMixin.cmd_get_mail_contact, _RECIPIENT_QUERY),
    _cmdlet("Get-DistributionGroup", ExchangeMixin.cmd_get_distribution_group, (*_RECIPIENT_QUERY, "ManagedBy")),
    _cmdlet("Get-DistributionGroupMember", ExchangeMixin.cmd_get_distribution_group_member,
            ("Identity", "ResultSize", "IgnoreDefaultScope"), ("Identity",)),
    _cmdlet("New-DistributionGroup", ExchangeMixin.cmd_new_distribution_group, (
        "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "Type", "ManagedBy", "Members", "Notes", "Description",
        "MemberJoinRestriction", "MemberDepartRestriction", "ModerationEnabled", "ModeratedBy",
        "RequireSenderAuthenticationEnabled", "SendModerationNotifications", "BypassNestedModerationEnabled",
        "CopyOwnerToMember", "IgnoreNamingPolicy", "RoomList", "HiddenGroupMembershipEnabled", "OrganizationalUnit",
    ), ("Name",)),
    _cmdlet("Set-DistributionGroup", ExchangeMixin.cmd_set_distribution_group, _GROUP_SET, ("Identity",)),
    _cmdlet("Set-Mailbox", ExchangeMixin.cmd_set_mailbox, _RECIPIENT_SET, ("Identity",)),
    _cmdlet("Set-MailContact", ExchangeMixin.cmd_set_mail_contact, (*_RECIPIENT_SET, "ExternalEmailAddress"),
            ("Identity",)),
    _cmdlet("Remove-DistributionGroup", ExchangeMixin.cmd_remove_distribution_group,
            ("Identity", "BypassSecurityGroupManagerCheck"), ("Identity",)),
    _cmdlet("Add-DistributionGroupMember", ExchangeMixin.cmd_add_distribution_group_member,
            ("Identity", "Member", "BypassSecurityGroupManagerCheck"), ("Identity", "Member")),
    _cmdlet("Remove-DistributionGroupMember", ExchangeMixin.cmd_remove_distribution_group_member,
            ("Identity", "Member", "BypassSecurityGroupManagerCheck"), ("Identity", "Member")),
    _cmdlet("Update-DistributionGroupMember", ExchangeMixin.cmd_update_distribution_group_member,
            ("Identity", "Members", "BypassSecurityGroupManagerCheck"), ("Identity",)),
    _cmdlet("Get-AcceptedDomain", ExchangeMixin.cmd_get_accepted_domain, ("Identity", "ResultSize")),
    _cmdlet("Get-OutboundConnector", ExchangeMixin.cmd_get_outbound_connector,
            ("Identity", "IncludeTestModeConnectors")),
    _cmdlet("Get-RecipientPermission", ExchangeMixin.cmd_get_recipient_permission,
            ("Identity", "Trustee", "AccessRights", "ResultSize", "ReadFromDomainController")),
    _cmdlet("Add-RecipientPermission", ExchangeMixin.cmd_add_recipient_permission,
            ("Identity", "Trustee", "AccessRights", "Deny"), ("Identity", "Trustee", "AccessRights")),
])

_RENDER_FIRST = ("Name", "DisplayName", "Alias", "PrimarySmtpAddress", "RecipientType", "RecipientTypeDetails",
                 "ExternalDirectoryObjectId", "ExchangeObjectId", "Guid", "IsDirSynced", "EmailAddresses",
                 "DistinguishedName", "LegacyExchangeDN")

# Filterable in OPATH although not a stored property (computed by _opath_getter).
_OPATH_EXTRA = ("MemberOfGroup", "AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers", "RejectMessagesFrom",
                "RejectMessagesFromDLMembers", "Identity")
_FILTERABLE_ALWAYS = {p.lower(): p for p in (
    "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "EmailAddresses", "RecipientType", "RecipientTypeDetails",
    "ExternalDirectoryObjectId", "IsDirSynced", "HiddenFromAddressListsEnabled", "WindowsEmailAddress",
    "ExternalEmailAddress", "Guid", "ExchangeObjectId", "DistinguishedName", "LegacyExchangeDN",
    "RequireSenderAuthenticationEnabled", "ModerationEnabled", "ForwardingAddress", "ForwardingSmtpAddress",
    "IsExchangeCloudManaged", *RECIPIENT_LINK_PROPERTIES, *_OPATH_EXTRA,
    *(f"CustomAttribute{i}" for i in range(1, 16)),
)}


def _result_size(bound: Mapping[str, Any]) -> tuple[int, bool]:
    raw = bound.get("ResultSize")
    if raw is None:
        return EXCHANGE_DEFAULT_RESULT_SIZE, False
    if str(raw).lower() == "unlimited":
        return 0, True
    try:
        return max(0, int(raw)), False
    except ValueError:
        raise ExchangeError("System.Management.Automation.ParameterBindingException",
                            f"Cannot bind parameter 'ResultSize'. Cannot convert value \"{raw}\" to type "
                            "\"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\".") from None



def _prefixed(value: Any) -> str:
    text = str(value)
    return text if re.match(r"^[A-Za-z0-9]+:", text) else f"smtp:{text}"


def _apply_multi(current: list[Any], change: Any, convert: Callable[[Any], Any]) -> list[Any]:
    """A multi-valued parameter: a list replaces; ``{"Add": [...], "Remove": [...]}`` edits (the
    hashtable form, sent over REST as ``#Exchange.GenericHashTable``)."""
    if isinstance(change, dict):
        result = list(current)
        lowered = {k.lower(): v for k, v in change.items() if not k.startswith("@")}
        for value in _as_list(lowered.get("remove")):
            converted = convert(value)
            result = [v for v in result if str(v).lower() != str(converted).lower()]
        for value in _as_list(lowered.get("add")):
            converted = convert(value)
            if all(str(v).lower() != str(converted).lower() for v in result):
                result.append(converted)
        return result
    return [convert(v) for v in _as_list(change)]


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
