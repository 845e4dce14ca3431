"""Graph directory surface: users, groups, contacts, members, transitive members, memberOf,
``directoryObjects`` and ``organization``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .api import ApiRequest, ApiResponse
from .errors import graph_error
from .graph_schema import _CASTS, DL_UPDATE_ERROR, ON_PREM_PROPERTIES_ERROR, WRITEBACK_GROUP_TYPES, _is_exchange_managed
from .store.common import CLOUD_MANAGED_KEY

# Source of authority (Graph v1.0 and beta ``onPremisesSyncBehavior``, "Configure Group Source of Authority"):
# one permission per object kind; the group and user names are Microsoft's, the contact one is the lab's
# by analogy (not confirmed in a citable source).
SOA_PERMISSIONS = {"group": "Group-OnPremisesSyncBehavior.ReadWrite.All",
                   "user": "User-OnPremisesSyncBehavior.ReadWrite.All",
                   "contact": "Contact-OnPremisesSyncBehavior.ReadWrite.All"}
# The directory audit activities written for a conversion and its undo, in the current spelling of Microsoft
# Learn ("How to audit and monitor Group Source of Authority", 2025-08, and the user SOA pages: "Change Source
# of Authority from AD DS to cloud"; "Configure Group Source of Authority", roll back section: "Undo changes to
# Source of Authority from AD DS to cloud"). Earlier revisions say "from AD to cloud" for both; the portal
# accepts either (migrations_app.inplace.AUDIT_CONVERT_NAMES).
SOA_AUDIT_CONVERT = "Change Source of Authority from AD DS to cloud"
SOA_AUDIT_UNDO = "Undo changes to Source of Authority from AD DS to cloud"


def _ad_managed(item: Mapping[str, Any]) -> bool:
    """Whether AD still owns the object: synced and not handed to the cloud (which frees it at once)."""
    return bool(item.get("onPremisesSyncEnabled")) and not item.get(CLOUD_MANAGED_KEY)


class GraphDirectoryMixin:
    """Directory handlers; part of ``LabCloud``."""

    def _user_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        ident = match.group(1)
        if req.method == "GET":
            self._require_read(req, "user")
            select = self._select(req, ["user"])
            user = self._object_or_404(req, ident, "user")
            body = {"@odata.context": self._context(req, f"users({','.join(select)})/$entity" if select
                                                    else "users/$entity"),
                    **self._project(user, select, req.version)}
            return ApiResponse(200, body)
        self._require(req, "User.ReadWrite.All", "Directory.ReadWrite.All")
        user = self._object_or_404(req, ident, "user")
        if _ad_managed(user):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if req.method == "DELETE":
            self.store.delete_object(object_id=user["id"])
            self._audit(req, "Delete user", "UserManagement", "Delete", user, "User")
            return ApiResponse(204)
        changes = self._patch_body(req, {"displayName", "jobTitle", "department", "givenName", "surname",
                                         "officeLocation", "usageLocation", "accountEnabled", "mobilePhone",
                                         "companyName", "employeeId", "city", "country"}, "User")
        self.store.update_object(object_id=user["id"], properties=changes)
        self._audit(req, "Update user", "UserManagement", "Update", user, "User", changes)
        return ApiResponse(204)

    def _patch_body(self, req: ApiRequest, allowed: set[str], resource: str) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            raise graph_error(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                              "header is set and payload is of valid JSON format.", req) from None
        if not isinstance(body, dict):
            raise graph_error(400, "BadRequest", "Empty Payload. JSON content expected.", req)
        for key in body:
            if key not in allowed and not key.startswith("@"):
                raise graph_error(400, "Request_BadRequest", f"Property '{key}' does not exist as a declared property "
                                  f"or extension property.", req)
        return {k: v for k, v in body.items() if not k.startswith("@")}

    def _group_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        ident = match.group(1)
        if req.method == "GET":
            self._require_read(req, "group")
            select = self._select(req, ["group"])
            group = self._object_or_404(req, ident, "group")
            body = {"@odata.context": self._context(req, f"groups({','.join(select)})/$entity" if select
                                                    else "groups/$entity"),
                    **self._project(group, select, req.version)}
            return ApiResponse(200, body)
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All")
        group = self._object_or_404(req, ident, "group")
        if _ad_managed(group):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if req.method == "DELETE":
            self.store.delete_object(object_id=group["id"])
            self._audit(req, "Delete group", "GroupManagement", "Delete", group, "Group")
            return ApiResponse(204)
        allowed = {"displayName", "description", "mailNickname", "visibility"}
        if req.version == "beta":
            allowed.add("writebackConfiguration")
        changes = self._patch_body(req, allowed, "Group")
        if _is_exchange_managed(group):
            raise graph_error(400, "Request_BadRequest", DL_UPDATE_ERROR, req)
        if "writebackConfiguration" in changes:
            changes["writebackConfiguration"] = self._writeback_change(req, group, changes["writebackConfiguration"])
        self.store.update_object(object_id=group["id"], properties=changes)
        self._audit(req, "Update group", "GroupManagement", "Update", group, "Group", changes)
        return ApiResponse(204)

    def _writeback_change(self, req: ApiRequest, group: Mapping[str, Any], change: Any) -> dict[str, Any]:
        if not isinstance(change, dict) or set(change) - {"isEnabled", "onPremisesGroupType", "@odata.type"}:
            raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'writebackConfiguration'"
                              " of resource 'Group'.", req)
        merged = {**(group.get("writebackConfiguration") or {"isEnabled": None, "onPremisesGroupType": None})}
        if "isEnabled" in change:
            if change["isEnabled"] is not None and not isinstance(change["isEnabled"], bool):
                raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'isEnabled' of "
                                  "resource 'GroupWritebackConfiguration'.", req)
            merged["isEnabled"] = change["isEnabled"]
        if "onPremisesGroupType" in change:
            value = change["onPremisesGroupType"]
            unified = "Unified" in (group.get("groupTypes") or [])
            # Microsoft 365 groups may be written back as any of the three types; security groups
            # only as security groups (Graph beta, groupWritebackConfiguration resource).
            allowed = WRITEBACK_GROUP_TYPES if unified else ("universalSecurityGroup",)
            if value is not None and value not in allowed:
                raise graph_error(400, "Request_BadRequest", "Invalid value specified for property "
                                  "'onPremisesGroupType' of resource 'GroupWritebackConfiguration'.", req)
            merged["onPremisesGroupType"] = value
        return merged

    def _sync_behavior(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        """``GET``/``PATCH /{users|groups|contacts}/{id}/onPremisesSyncBehavior``."""
        kind = {"users": "user", "groups": "group", "contacts": "contact"}[match.group(1).lower()]
        self._require(req, SOA_PERMISSIONS[kind])
        item = self._object_or_404(req, match.group(2), kind)
        if req.method == "GET":
            context = f"{match.group(1)}('{item['id']}')/onPremisesSyncBehavior/$entity"
            return ApiResponse(200, {
                "@odata.context": self._context(req, context),
                "id": item["id"], "isCloudManaged": bool(item.get(CLOUD_MANAGED_KEY))})
        changes = self._patch_body(req, {"isCloudManaged"}, "OnPremisesSyncBehavior")
        wanted = changes.get("isCloudManaged")
        if not isinstance(wanted, bool):
            raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'isCloudManaged' of "
                              "resource 'OnPremisesSyncBehavior'.", req)
        anchored = self.store.source_anchor_of(object_id=item["id"]) is not None
        if wanted and not (item.get("onPremisesSyncEnabled") or anchored):
            # Lab wording: only an object that came from AD has a source of authority to hand over.
            raise graph_error(400, "Request_BadRequest", "The object is not synchronized from on-premises Active "
                              "Directory; its source of authority is already the cloud.", req)
        before = bool(item.get(CLOUD_MANAGED_KEY))
        if before == wanted:
            return ApiResponse(204)
        self.store.update_object(object_id=item["id"], properties={CLOUD_MANAGED_KEY: wanted})
        target_type = {"user": "User", "group": "Group", "contact": "Contact"}[kind]
        category = {"user": "UserManagement", "group": "GroupManagement", "contact": "ContactManagement"}[kind]
        self._audit(req, SOA_AUDIT_CONVERT if wanted else SOA_AUDIT_UNDO, category, "Update",
                    {**item, "isCloudManaged": before}, target_type, {"isCloudManaged": wanted})
        return ApiResponse(204)

    def _contact_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require_read(req, "contact")
        select = self._select(req, ["contact"])
        contact = self._object_or_404(req, match.group(1), "contact")
        return ApiResponse(200, {"@odata.context": self._context(req, "contacts/$entity"),
                                 **self._project(contact, select, req.version)})

    def _directory_object(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Directory.Read.All", "Directory.ReadWrite.All")
        item = self._object_or_404(req, match.group(1), None)
        return ApiResponse(200, {"@odata.context": self._context(req, "directoryObjects/$entity"),
                                 **self._project(item, None, req.version, odata_type=True)})

    def _members(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require_read(req, "group")
        group = self._object_or_404(req, match.group(1), "group")
        relation, cast = match.group(2), match.group(3)
        return self._related(req, relation, cast, group["id"], f"/groups/{match.group(1)}/{relation}"
                             + (f"/{cast}" if cast else ""), transitive=relation.lower() == "transitivemembers")

    def _members_count(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require_read(req, "group")
        if not self._eventual(req):
            raise graph_error(400, "Request_UnsupportedQuery",
                              "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is "
                              "missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information", req)
        group = self._object_or_404(req, match.group(1), "group")
        kind = _CASTS.get((match.group(3) or "").lower())
        ids = (self.store.transitive_member_ids(group_id=group["id"]) if match.group(2).lower() == "transitivemembers"
               else self.store.member_ids(group_id=group["id"]))
        where = self._filter(req, directory=True)
        total = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, restrict_ids=ids, limit=1, with_total=True,  # type: ignore[arg-type]
            spec_name=kind or "directoryObject")).total
        return ApiResponse(200, str(total or 0), content_type="text/plain")

    def _member_of(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Directory.Read.All", "Directory.ReadWrite.All", "GroupMember.Read.All",
                      "Group.Read.All", "Group.ReadWrite.All", "User.Read.All")
        base = "users" if req.path.lower().split("/")[2] == "users" else "groups"
        item = self._object_or_404(req, match.group(1), "user" if base == "users" else "group")
        relation, cast = match.group(2), match.group(3)
        transitive = relation.lower() == "transitivememberof"
        ids = (self.store.transitive_group_ids_of(member_id=item["id"]) if transitive
               else self.store.group_ids_of(member_id=item["id"]))
        return self._related(req, relation, cast, None, f"/{base}/{match.group(1)}/{relation}"
                             + (f"/{cast}" if cast else ""), ids=ids)

    def _related(self, req: ApiRequest, relation: str, cast: str | None, group_id: str | None, path: str, *,
                 transitive: bool = False, ids: Sequence[str] | None = None) -> ApiResponse:
        kind = _CASTS.get((cast or "").lower())
        kinds = [kind] if kind else ["user", "group", "contact"]
        select = self._select(req, kinds)
        where = self._filter(req, directory=True)
        count = self._count_requested(req)
        if count and not self._eventual(req):
            raise graph_error(400, "Request_BadRequest", "$count is not currently supported.", req)
        top = self._top(req)
        token = self._skiptoken(req)
        if ids is None and transitive and group_id:
            ids = self.store.transitive_member_ids(group_id=group_id)
        page = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, limit=top, token=token, with_total=count,  # type: ignore[arg-type]
            restrict_ids=ids, member_of=group_id if ids is None else None, spec_name=kind or "directoryObject"))
        items = [self._project(item, select, req.version, odata_type=True) for item in page.items]
        context = {"user": "users", "group": "groups", "contact": "contacts"}.get(kind or "", "directoryObjects")
        if select:
            context += f"({','.join(select)})"
        return self._collection(req, path, context, page, items, count)

    def _create_group(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        """POST /groups: a cloud security group (Microsoft 365 groups and mail-enabled security groups are not
        created through this lab path; Graph itself refuses mail-enabled security groups)."""
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All", "Group.Create")
        body = req.json() if req.body else None
        if not isinstance(body, dict):
            raise graph_error(400, "BadRequest", "Empty Payload. JSON content expected.", req)
        for prop in ("displayName", "mailNickname", "mailEnabled", "securityEnabled"):
            if prop not in body:
                raise graph_error(400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of "
                                  "resource 'Group'.", req)
        name, nickname = body["displayName"], body["mailNickname"]
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'displayName' of "
                              "resource 'Group'.", req)
        if not isinstance(nickname, str) or not re.fullmatch(r"[A-Za-z0-9._\-]{1,64}", nickname):
            raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'mailNickname' of "
                              "resource 'Group'.", req)
        types = body.get("groupTypes") or []
        if body["mailEnabled"] is not False or body["securityEnabled"] is not True or types:
            raise graph_error(400, "Request_BadRequest", "The lab creates cloud security groups only "
                              "(mailEnabled false, securityEnabled true, no groupTypes).", req)
        extra = {k: body[k] for k in ("description",) if isinstance(body.get(k), str)}
        group = self.store.create_group(display_name=name, mail_nickname=nickname, extra=extra)
        self._audit(req, "Add group", "GroupManagement", "Add", group, "Group")
        return ApiResponse(201, {"@odata.context": self._context(req, "groups/$entity"),
                                 **self._project(group, None, req.version)})

    def _add_member_ref(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All", "GroupMember.ReadWrite.All")
        group = self._object_or_404(req, match.group(1), "group")
        body = req.json() if req.body else None
        ref = body.get("@odata.id") if isinstance(body, dict) else None
        if not isinstance(ref, str) or "/" not in ref:
            raise graph_error(400, "BadRequest", "Invalid object identifier '@odata.id'.", req)
        member_id = ref.rstrip("/").rsplit("/", 1)[-1]
        member = self._object_or_404(req, member_id, None)
        if _ad_managed(group):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if _is_exchange_managed(group):
            raise graph_error(400, "Request_BadRequest", DL_UPDATE_ERROR, req)
        if not self.store.add_member(group_id=group["id"], member_id=member["id"]):
            raise graph_error(400, "Request_BadRequest", "One or more added object references already exist for the "
                              "following modified properties: 'members'.", req)
        self._audit(req, "Add member to group", "GroupManagement", "Assign", group, "Group",
                    extra_target=member)
        return ApiResponse(204)

    def _remove_member_ref(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All", "GroupMember.ReadWrite.All")
        group = self._object_or_404(req, match.group(1), "group")
        if _ad_managed(group):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if _is_exchange_managed(group):
            raise graph_error(400, "Request_BadRequest", DL_UPDATE_ERROR, req)
        if not self.store.remove_member(group_id=group["id"], member_id=match.group(2)):
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(2)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        self._audit(req, "Remove member from group", "GroupManagement", "Unassign", group, "Group")
        return ApiResponse(204)

    def _organization(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        domains = self.store.list_accepted_domains()
        org = {
            "id": self.tenant_id, "displayName": "Contoso (lab)", "tenantType": "AAD",
            "onPremisesSyncEnabled": True,
            "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": bool(d["Default"]),
                                 "isInitial": bool(d["InitialDomain"]), "name": d["DomainName"], "type": "Managed"}
                                for d in domains],
        }
        return ApiResponse(200, {"@odata.context": self._context(req, "organization"), "value": [org]})
