"""Exchange Online recipients, recipient permissions, accepted domains and outbound connectors."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .common import (
    _RECIPIENT_TYPE,
    EXCHANGE_ADMIN_GROUP,
    RECIPIENT_LINK_PROPERTIES,
    ConflictError,
    NotFoundError,
    _dumps,
    _exchange_dn,
    _new_id,
    _normalise_addresses,
    _recipient_defaults,
    iso,
    utc_now,
)


class ExchangeStoreMixin:
    """Exchange Online data; part of ``CloudStore``."""

    def create_recipient(
        self,
        *,
        recipient_type_details: str,
        name: str,
        alias: str,
        primary_smtp_address: str,
        email_addresses: Sequence[str] = (),
        object_id: str | None = None,
        display_name: str | None = None,
        is_dir_synced: bool = False,
        properties: Mapping[str, Any] | None = None,
        recipient_id: str | None = None,
    ) -> dict[str, Any]:
        """Create the Exchange Online view of a mail-enabled object.

        ``object_id`` links it to its Entra object (``ExternalDirectoryObjectId``). The
        primary address is added to ``EmailAddresses`` as ``SMTP:`` when missing. Exchange's
        generated values (``LegacyExchangeDN``, ``DistinguishedName``, timestamps) are filled in.
        """
        if recipient_type_details not in _RECIPIENT_TYPE:
            raise ValueError(f"unknown RecipientTypeDetails {recipient_type_details!r}")
        rid = (recipient_id or _new_id()).lower()
        now = utc_now()
        addresses = _normalise_addresses(primary_smtp_address, email_addresses)
        legacy = f"/o=ExchangeLabs/ou={EXCHANGE_ADMIN_GROUP}/cn=Recipients/cn={uuid.uuid4().hex}-{alias[:20]}"
        org = self.initial_domain or "lab.onmicrosoft.com"
        doc: dict[str, Any] = {
            **_recipient_defaults(recipient_type_details),
            "Name": name,
            "DisplayName": display_name or name,
            "Alias": alias,
            "PrimarySmtpAddress": primary_smtp_address,
            "WindowsEmailAddress": primary_smtp_address,
            "EmailAddresses": addresses,
            "RecipientType": _RECIPIENT_TYPE[recipient_type_details],
            "RecipientTypeDetails": recipient_type_details,
            "IsDirSynced": is_dir_synced,
            "ExternalDirectoryObjectId": (object_id or "").lower(),
            "ExchangeObjectId": rid,
            "Guid": rid,
            "LegacyExchangeDN": legacy,
            "OrganizationalUnit": f"{org}/Microsoft Exchange Hosted Organizations/{org}",
            "WhenCreated": iso(now),
            "WhenChanged": iso(now),
            "WhenCreatedUTC": iso(now),
            "WhenChangedUTC": iso(now),
        }
        for key, value in (properties or {}).items():
            doc[key] = value
        doc["DistinguishedName"] = _exchange_dn(doc["Name"], org)
        with self.transaction():
            self._check_recipient_addresses(rid, doc["EmailAddresses"])
            self._execute(
                "INSERT INTO recipients (id, object_id, type_details, name, alias, primary_smtp, dn, legacy_dn, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, doc["ExternalDirectoryObjectId"] or None, recipient_type_details, doc["Name"], doc["Alias"],
                 doc["PrimarySmtpAddress"], doc["DistinguishedName"], doc["LegacyExchangeDN"], _dumps(doc)),
            )
            self._write_recipient_addresses(rid, doc["EmailAddresses"])
        return {"@id": rid, **doc}

    def update_recipient(self, *, recipient_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Merge Exchange properties into a recipient; keeps the indexed columns in step."""
        rid = recipient_id.lower()
        with self.transaction():
            row = self._execute("SELECT doc FROM recipients WHERE id = ?", (rid,)).fetchone()
            if row is None:
                raise NotFoundError(f"no recipient {recipient_id}")
            doc = json.loads(row[0])
            doc.update(properties)
            if "PrimarySmtpAddress" in properties and "EmailAddresses" not in properties:
                doc["EmailAddresses"] = _normalise_addresses(doc["PrimarySmtpAddress"], doc.get("EmailAddresses", []))
            elif "EmailAddresses" in properties:
                primary = next((a[5:] for a in doc["EmailAddresses"] if a.startswith("SMTP:")),
                               doc["PrimarySmtpAddress"])
                doc["PrimarySmtpAddress"] = primary
                doc["EmailAddresses"] = _normalise_addresses(primary, doc["EmailAddresses"])
            doc["WindowsEmailAddress"] = doc["PrimarySmtpAddress"]
            doc["DistinguishedName"] = _exchange_dn(doc["Name"], self.initial_domain or "lab.onmicrosoft.com")
            doc["WhenChanged"] = doc["WhenChangedUTC"] = iso(utc_now())
            self._check_recipient_addresses(rid, doc["EmailAddresses"])
            self._execute(
                "UPDATE recipients SET type_details = ?, name = ?, alias = ?, primary_smtp = ?, dn = ?, object_id = ?,"
                " doc = ? WHERE id = ?",
                (doc["RecipientTypeDetails"], doc["Name"], doc["Alias"], doc["PrimarySmtpAddress"],
                 doc["DistinguishedName"], doc.get("ExternalDirectoryObjectId") or None, _dumps(doc), rid),
            )
            self._execute("DELETE FROM recipient_addresses WHERE recipient_id = ?", (rid,))
            self._write_recipient_addresses(rid, doc["EmailAddresses"])
        return {"@id": rid, **doc}

    def delete_recipient(self, *, recipient_id: str) -> bool:
        """Delete a recipient, its permissions, and every link other recipients hold to it."""
        rid = recipient_id.lower()
        with self.transaction():
            cursor = self._execute("DELETE FROM recipients WHERE id = ?", (rid,))
            if cursor.rowcount == 0:
                return False
            self._execute("DELETE FROM recipient_addresses WHERE recipient_id = ?", (rid,))
            self._execute("DELETE FROM recipient_permissions WHERE recipient_id = ? OR trustee_id = ?", (rid, rid))
            # Only documents that mention the id can link to it; the LIKE keeps this cheap.
            for row in self._execute("SELECT id, doc FROM recipients WHERE doc LIKE ?", (f"%{rid}%",)).fetchall():
                doc = json.loads(row["doc"])
                changed = False
                for prop in RECIPIENT_LINK_PROPERTIES:
                    values = doc.get(prop) or []
                    if rid in values:
                        doc[prop] = [v for v in values if v != rid]
                        changed = True
                if changed:
                    self._execute("UPDATE recipients SET doc = ? WHERE id = ?", (_dumps(doc), row["id"]))
        return True

    def get_recipient(self, *, recipient_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT id, doc FROM recipients WHERE id = ?", (recipient_id.lower(),)).fetchone()
        return self._recipient_row(row) if row else None

    def get_recipient_by_object_id(self, *, object_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT id, doc FROM recipients WHERE object_id = ?", (object_id.lower(),)).fetchone()
        return self._recipient_row(row) if row else None

    def recipients_by_ids(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = [i.lower() for i in ids]
        if not wanted:
            return {}
        rows = self._execute("SELECT id, doc FROM recipients WHERE id IN (SELECT value FROM json_each(?))",
                             (_dumps(wanted),)).fetchall()
        return {row["id"]: self._recipient_row(row) for row in rows}

    def recipients_by_object_ids(self, object_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = [i.lower() for i in object_ids]
        if not wanted:
            return {}
        rows = self._execute("SELECT id, doc FROM recipients WHERE object_id IN (SELECT value FROM json_each(?))",
                             (_dumps(wanted),)).fetchall()
        found = {}
        for row in rows:
            rec = self._recipient_row(row)
            found[rec["ExternalDirectoryObjectId"]] = rec
        return found

    def resolve_recipients(self, *, identity: str, types: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Recipients an Exchange ``-Identity`` value names: id, ExternalDirectoryObjectId, Name,
        Alias, DistinguishedName, LegacyExchangeDN or any e-mail address. More than one result
        means the identity is ambiguous."""
        value = identity.strip()
        address = value if re.match(r"^[A-Za-z0-9]+:", value) and "@" in value else f"smtp:{value}"
        rows = self._execute(
            "SELECT id, doc, type_details FROM recipients WHERE id = ? OR object_id = ? OR name = ? OR alias = ?"
            " OR dn = ? OR legacy_dn = ? OR primary_smtp = ?"
            " OR id IN (SELECT recipient_id FROM recipient_addresses WHERE address = ?)",
            (value.lower(), value.lower(), value, value, value, value, value, address),
        ).fetchall()
        allowed = set(types) if types is not None else None
        return [self._recipient_row(row) for row in rows if allowed is None or row["type_details"] in allowed]

    def iter_recipients(self, *, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Recipients in creation order, optionally of some RecipientTypeDetails only."""
        if types is None:
            cursor = self._execute("SELECT id, doc FROM recipients ORDER BY seq")
        else:
            cursor = self._execute(
                "SELECT id, doc FROM recipients WHERE type_details IN (SELECT value FROM json_each(?)) ORDER BY seq",
                (_dumps(sorted(types)),),
            )
        for row in cursor:
            yield self._recipient_row(row)

    def _recipient_row(self, row: sqlite3.Row) -> dict[str, Any]:
        return {"@id": row["id"], **json.loads(row["doc"])}

    def _write_recipient_addresses(self, rid: str, addresses: Iterable[str]) -> None:
        self._conn().executemany("INSERT OR IGNORE INTO recipient_addresses (recipient_id, address) VALUES (?, ?)",
                                 [(rid, a) for a in addresses])

    def _check_recipient_addresses(self, rid: str, addresses: Iterable[str]) -> None:
        for address in addresses:
            row = self._execute(
                "SELECT recipient_id FROM recipient_addresses WHERE address = ? AND recipient_id != ? LIMIT 1",
                (address, rid),
            ).fetchone()
            if row:
                raise ConflictError(attribute="EmailAddresses", value=address, existing_id=row[0])

    # -- recipient permissions

    def add_recipient_permission(self, *, recipient_id: str, trustee_id: str, access_right: str = "SendAs") -> bool:
        cursor = self._execute(
            "INSERT OR IGNORE INTO recipient_permissions (recipient_id, trustee_id, access_right) VALUES (?, ?, ?)",
            (recipient_id.lower(), trustee_id.lower(), access_right),
        )
        return cursor.rowcount > 0

    def remove_recipient_permission(self, *, recipient_id: str, trustee_id: str, access_right: str = "SendAs") -> bool:
        cursor = self._execute(
            "DELETE FROM recipient_permissions WHERE recipient_id = ? AND trustee_id = ? AND access_right = ?",
            (recipient_id.lower(), trustee_id.lower(), access_right),
        )
        return cursor.rowcount > 0

    def list_recipient_permissions(
        self, *, recipient_id: str | None = None, trustee_id: str | None = None
    ) -> list[dict[str, str]]:
        clauses, params = ["1"], []
        if recipient_id:
            clauses.append("recipient_id = ?")
            params.append(recipient_id.lower())
        if trustee_id:
            clauses.append("trustee_id = ?")
            params.append(trustee_id.lower())
        rows = self._execute(
            f"SELECT recipient_id, trustee_id, access_right FROM recipient_permissions WHERE {' AND '.join(clauses)}"
            " ORDER BY rowid",
            params,
        ).fetchall()
        return [dict(row) for row in rows]

    # -- accepted domains and connectors

    def add_accepted_domain(
        self, *, domain_name: str, domain_type: str = "Authoritative", default: bool = False, initial: bool = False
    ) -> dict[str, Any]:
        doc = {
            "Name": domain_name.lower(),
            "Identity": domain_name.lower(),
            "DomainName": domain_name.lower(),
            "DomainType": domain_type,
            "Default": default,
            "InitialDomain": initial,
            "MatchSubDomains": False,
            "AddressBookEnabled": domain_type == "Authoritative",
            "IsValid": True,
        }
        with self.transaction():
            if default:
                for row in self._execute("SELECT name, doc FROM accepted_domains").fetchall():
                    other = json.loads(row["doc"])
                    if other.get("Default"):
                        other["Default"] = False
                        self._execute("UPDATE accepted_domains SET doc = ? WHERE name = ?",
                                      (_dumps(other), row["name"]))
            self._execute("INSERT OR REPLACE INTO accepted_domains (name, doc) VALUES (?, ?)",
                          (domain_name.lower(), _dumps(doc)))
        return doc

    def remove_accepted_domain(self, *, domain_name: str) -> bool:
        return self._execute("DELETE FROM accepted_domains WHERE name = ?", (domain_name,)).rowcount > 0

    def list_accepted_domains(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT doc FROM accepted_domains ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]

    def default_domain(self) -> str | None:
        domains = self.list_accepted_domains()
        chosen = next((d for d in domains if d.get("Default")), None) or (domains[0] if domains else None)
        return chosen["DomainName"] if chosen else self.initial_domain

    def add_outbound_connector(self, *, name: str, properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """An outbound connector (e.g. the hybrid one routing to on-premises)."""
        doc = {
            "Name": name,
            "Identity": name,
            "Enabled": True,
            "ConnectorType": "OnPremises",
            "ConnectorSource": "HybridWizard",
            "UseMXRecord": False,
            "SmartHosts": [],
            "RecipientDomains": [],
            "TlsSettings": "DomainValidation",
            "TlsDomain": None,
            "IsTransportRuleScoped": False,
            "RouteAllMessagesViaOnPremises": False,
            "CloudServicesMailEnabled": True,
            "AllAcceptedDomains": False,
            "Comment": None,
            **(properties or {}),
        }
        self._execute("INSERT OR REPLACE INTO outbound_connectors (name, doc) VALUES (?, ?)", (name, _dumps(doc)))
        return doc

    def list_outbound_connectors(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT doc FROM outbound_connectors ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]
