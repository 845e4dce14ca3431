"""What the scan reads, turned into the rules' inputs. No ORM here (the job stores through services).

AD: every user, group and contact under the sync OUs, paged by the connector (one page in memory);
the tenant: users and groups from Graph (paged), the verified domains, and today's export errors from
the sync server when it can list them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from portal.connectors.ad import ActiveDirectory, DirectoryObject

from .rules import CloudObject, Entry, ExportError, entry
from .rules.idfix import ATTRIBUTES

# What the rules read (IdFix's AttributesToQuery, and what ProxyCalc and the skip logic need).
AD_ATTRIBUTES = (*ATTRIBUTES, "cn", "objectClass", "objectGUID", "mS-DS-ConsistencyGuid", "groupType",
                 "isCriticalSystemObject", "msExchHideFromAddressLists", "msExchRecipientTypeDetails",
                 "msExchRemoteRecipientType", "homeMDB", "userCertificate", "thumbnailPhoto")
USER_SELECT = ("id", "displayName", "userPrincipalName", "mail", "mailNickname", "proxyAddresses",
               "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesDistinguishedName",
               "authorizationInfo", "assignedLicenses")
GROUP_SELECT = ("id", "displayName", "mail", "mailNickname", "proxyAddresses", "mailEnabled", "groupTypes",
                "onPremisesSyncEnabled", "onPremisesLastSyncDateTime")


def _anchor(obj: DirectoryObject) -> str | None:
    raw = obj.first("mS-DS-ConsistencyGuid")
    if isinstance(raw, bytes | bytearray) and raw:
        return base64.b64encode(bytes(raw)).decode()
    if obj.guid is not None:
        return base64.b64encode(obj.guid.bytes_le).decode()
    return None


def read_scope(directory: ActiveDirectory, *, bases: list[str], attributes: tuple[str, ...],
               page_size: int | None = None) -> Iterator[Entry]:
    for obj in directory.iter_in_scope(bases=bases, attributes=list(dict.fromkeys(attributes)),
                                       page_size=page_size):
        # Binary attributes are only counted or measured by the rules.
        values: dict[str, Any] = {k: v for k, v in obj.attributes.items()
                                  if k.lower() not in ("objectguid", "ms-ds-consistencyguid")}
        yield entry(dn=obj.dn, object_class=obj.get("objectClass"), attributes=values, anchor=_anchor(obj))


def read_tenant(graph: Any, *, exchange_cloud_managed: set[str] = frozenset()) -> Iterator[CloudObject]:
    """Users and groups from Graph. ``exchange_cloud_managed``: the object ids of the mailboxes whose Exchange
    attributes are managed in Exchange Online (:func:`exchange_cloud_managed_ids`)."""
    for user in graph.iter_users(select=USER_SELECT):
        licensed = bool((user.extra or {}).get("assignedLicenses"))
        yield CloudObject(
            id=user.id, kind="user", display_name=user.display_name or "",
            user_principal_name=user.user_principal_name, mail=user.mail, mail_nickname=user.mail_nickname,
            proxy_addresses=tuple(user.proxy_addresses), certificate_user_ids=tuple(user.certificate_user_ids),
            synced=bool(user.on_premises_sync_enabled), immutable_id=user.on_premises_immutable_id,
            on_premises_dn=user.on_premises_distinguished_name,
            # Synced once (an immutable id) but not synced now: the source of authority was handed to the cloud.
            cloud_managed=bool(user.on_premises_immutable_id and not user.on_premises_sync_enabled),
            exchange_cloud_managed=str(user.id).lower() in exchange_cloud_managed,
            # Graph does not say whether a mailbox exists; a licensed user with addresses has one.
            recipient="mailbox" if licensed and user.proxy_addresses else None)
    for group in graph.iter_groups(select=GROUP_SELECT):
        handed_over = bool(group.on_premises_last_sync and not group.on_premises_sync_enabled and
                           _cloud_managed_group(graph, group.id))
        yield CloudObject(
            id=group.id, kind="group", display_name=group.display_name or "", mail=group.mail,
            mail_nickname=group.mail_nickname, proxy_addresses=tuple(group.proxy_addresses),
            synced=bool(group.on_premises_sync_enabled), cloud_managed=handed_over,
            on_premises_dn=(group.extra or {}).get("onPremisesDistinguishedName"),
            unified="Unified" in group.group_types,
            recipient="mail_enabled" if group.mail_enabled else None)


def _cloud_managed_group(graph: Any, group_id: str) -> bool:
    """onPremisesSyncBehavior of a group synced once and not now; without the permission to read it the group is
    taken as not cloud-managed (its findings then propose AD fixes, which the plan shows before anyone applies)."""
    from portal.connectors.graph import GraphError

    try:
        return bool(graph.sync_behavior(group_id).is_cloud_managed)
    except GraphError:
        return False


def exchange_cloud_managed_ids(exchange: Any) -> set[str]:
    return exchange.exchange_cloud_managed_mailbox_ids()


def read_tenant_contacts(exchange: Any) -> Iterator[CloudObject]:
    """Mail contacts of Exchange Online that no AD object brings (created in the cloud): scanned and fixed
    there. A synced contact is its AD object's copy and is read from AD."""
    for recipient in exchange.iter_recipients(recipient_type_details=["MailContact"]):
        if recipient.is_dir_synced or not recipient.external_directory_object_id:
            continue
        yield CloudObject(
            id=recipient.external_directory_object_id, kind="contact", display_name=recipient.display_name or "",
            mail=recipient.primary_smtp_address, mail_nickname=recipient.alias,
            proxy_addresses=tuple(recipient.email_addresses), recipient="mail_enabled",
            target_address=recipient.raw.get("ExternalEmailAddress"))


def read_export_errors(sync: Any) -> list[ExportError]:
    return [ExportError(dn=e.distinguished_name, error_type=e.error_code or "", attribute=e.attribute or "",
                        message=e.message or "") for e in sync.export_errors() if e.distinguished_name]


def explainer_prefill(directory: ActiveDirectory, graph: Any | None, dn: str) -> dict[str, Any]:
    """Today's values of one object, in the explainer's input shape (portal.addressing.explain.FIELDS): its AD
    attributes, what it is in Exchange Online, the tenant's domains and, for a user, its cloud addresses."""
    from .rules.addresses import recipient_of

    obj = directory.read(dn, attributes=["objectClass", "userPrincipalName", "mail", "mailNickname",
                                         "proxyAddresses", "targetAddress", "msExchRecipientTypeDetails"])
    item = entry(dn=obj.dn, object_class=obj.get("objectClass"), attributes=obj.attributes)
    kind = item.object_class if item.object_class in ("user", "group", "contact") else "user"
    data: dict[str, Any] = {
        "kind": kind, "recipient": recipient_of(item, None).value,
        "userPrincipalName": obj.first("userPrincipalName") or "", "mail": obj.first("mail") or "",
        "mailNickname": obj.first("mailNickname") or "", "proxyAddresses": [str(v) for v in obj.get("proxyAddresses")],
        "targetAddress": obj.first("targetAddress") or "", "verified_domains": [], "initial_domain": "", "cloud": {}}
    if graph is None:
        return data
    verified, initial = graph.verified_domains()
    data["verified_domains"], data["initial_domain"] = list(verified), initial or ""
    if kind == "user" and data["userPrincipalName"]:
        user = graph.get_user(data["userPrincipalName"], select=USER_SELECT)
        data["cloud"] = {"mail": user.mail or "", "mailNickname": user.mail_nickname or "",
                         "proxyAddresses": list(user.proxy_addresses)}
        if user.extra and user.extra.get("assignedLicenses") and user.proxy_addresses:
            data["recipient"] = "mailbox"
    return data
