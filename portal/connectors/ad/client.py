"""ActiveDirectory: reading, paged searching, writing and checking one AD domain."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal
from uuid import UUID

import ldap3
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE
from ldap3.core import exceptions as ldap_exc

from .connection import _PAGED_OID, _SCOPES, _TREE_DELETE_OID, AdConnection, _ldap_values, _outcome
from .dn import _valid_attr_name, child_dn, parse_dn, rdn, same_dn, validate_dn
from .errors import (
    _AFTER_SEND,
    _BEFORE_SEND,
    AdError,
    Ambiguous,
    ConstraintViolation,
    InvalidFilter,
    NotFound,
    OutcomeUnknown,
    ServerDown,
    _error_from_result,
)
from .filters import (
    MATCH_ALL,
    RECIPIENT_KINDS,
    Filter,
    all_of,
    any_of,
    contains,
    eq,
    kind_filter,
    starts_with,
)
from .types import (
    _SID_RE,
    OPERATIONAL_ATTRIBUTES,
    CheckItem,
    CheckReport,
    DirectoryObject,
    NewEntry,
    _decode_values,
    _to_object,
)


class ActiveDirectory(AdConnection):
    """One AD domain, reached with ldap3. See the package docstring for the safety rules."""

    # ---- reading

    def root_dse(self) -> dict[str, list[str]]:
        outcome = self._call(
            "read rootDSE",
            lambda c: c.search("", "(objectClass=*)", search_scope=BASE, attributes=["*", "+"]),
            write=False,
        )
        _, _, response = self._ok("read rootDSE", outcome)
        entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
        if not entries:
            raise NotFound("the rootDSE returned nothing")
        return {k: _decode_values(k, v) for k, v in entries[0]["raw_attributes"].items()}

    def recycle_bin_enabled(self) -> bool | None:
        """Whether the forest's AD Recycle Bin optional feature is on (``msDS-EnabledFeature`` of the
        Partitions container names it); None when that cannot be read."""
        try:
            config = (self.root_dse().get("configurationNamingContext") or [""])[0]
            if not config:
                return None
            partitions = self.read(f"CN=Partitions,{config}", attributes=["msDS-EnabledFeature"])
        except AdError:
            return None
        enabled = partitions.get("msDS-EnabledFeature")
        return any(str(dn).lower().startswith("cn=recycle bin feature,") for dn in enabled)

    def read(self, dn: str, *, attributes: Sequence[str] | None = None) -> DirectoryObject:
        """One object by DN. ``attributes=None`` reads everything (as :meth:`read_all`)."""
        return self._read_base(str(parse_dn(dn)), attributes, shown=dn)

    def read_all(self, dn: str) -> DirectoryObject:
        """Every attribute of an object, operational ones included, ranged values completed."""
        return self._read_base(str(parse_dn(dn)), None, shown=dn)

    def read_by_guid(self, guid: UUID | str, *, attributes: Sequence[str] | None = None) -> DirectoryObject:
        value = guid if isinstance(guid, UUID) else UUID(str(guid))
        return self._read_base(f"<GUID={value}>", attributes, shown=f"GUID {value}")

    def read_by_sid(self, sid: str, *, attributes: Sequence[str] | None = None) -> DirectoryObject:
        if not isinstance(sid, str) or not _SID_RE.match(sid):
            raise AdError(f"{sid!r} is not a SID in S-1-... form")
        return self._read_base(f"<SID={sid}>", attributes, shown=f"SID {sid}")

    def exists(self, dn: str) -> bool:
        try:
            self.read(dn, attributes=["objectClass"])
        except NotFound:
            return False
        return True

    def _read_base(self, base: str, attributes: Sequence[str] | None, *, shown: str) -> DirectoryObject:
        attrs = self._attribute_list(attributes)
        outcome = self._call(
            f"read {shown}",
            lambda c: c.search(base, str(MATCH_ALL), search_scope=BASE, attributes=attrs),
            write=False,
            dn=shown,
        )
        _, result, response = outcome
        entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
        if int(result.get("result", 0)) != 0 or not entries:
            if int(result.get("result", 0)) in (0, 32, 10):
                raise NotFound(
                    f"no object {shown}", result_code=int(result.get("result", 32)),
                    description=str(result.get("description") or ""), ldap_message=str(result.get("message") or ""),
                    dn=shown,
                )
            raise _error_from_result(f"read {shown}", result, shown)
        return self._complete_ranges(entries[0])

    @staticmethod
    def _attribute_list(attributes: Sequence[str] | None) -> list[str]:
        if attributes is None:
            return ["*", *OPERATIONAL_ATTRIBUTES]
        names = list(attributes)
        for name in names:
            if name not in ("*", "+", "1.1") and not _valid_attr_name(name.split(";", 1)[0]):
                raise AdError(f"{name!r} is not a valid attribute name")
        if names == ["1.1"]:
            return names
        lower = {n.lower() for n in names}
        # Every DirectoryObject carries its GUID, SID and classes, whatever the caller asked for.
        names += [must for must in ("objectGUID", "objectSid", "objectClass") if must.lower() not in lower]
        return names

    def _complete_ranges(self, entry: Mapping[str, Any]) -> DirectoryObject:
        """Replace ``attr;range=a-b`` values (Windows caps at 1500) by every value of ``attr``."""
        raw = entry.get("raw_attributes") or {}
        ranged = [k for k in raw if ";" in k and ";range=" in k.lower()]
        if ranged:  # rare (only large multi-valued attributes): copy before completing
            raw = dict(raw)
            for key in ranged:
                name, _, spec = key.partition(";")
                low, _, high = spec.split("=", 1)[1].partition("-")
                values = list(raw.pop(key) or ())
                if high != "*":
                    values += [v.encode() if isinstance(v, str) else v for v in self._iter_raw_values(
                        entry["dn"], name, start=int(high) + 1)]
                raw[name] = values
        return _to_object(entry.get("dn", ""), raw)

    def search(
        self,
        *,
        filter: Filter,  # noqa: A002  (the LDAP term; shadowing the builtin is harmless here)
        base: str | None = None,
        attributes: Sequence[str] | None = None,
        scope: Literal["base", "one", "subtree"] = "subtree",
        page_size: int | None = None,
        limit: int | None = None,
    ) -> Iterator[DirectoryObject]:
        """Paged search as a generator: one page in memory at a time, whatever the result size.

        ``filter`` must be a :class:`Filter` from this module's helpers. ``limit`` stops after that
        many objects (client side; the server-side paging continues to be released properly).
        """
        if not isinstance(filter, Filter):
            raise InvalidFilter("filter must be a Filter built by the helper functions, not a string")
        search_base = str(parse_dn(base)) if base else str(parse_dn(self.settings.base_dn))
        if scope not in _SCOPES:
            raise AdError(f"scope must be one of {sorted(_SCOPES)}")
        attrs = self._attribute_list(attributes if attributes is not None else ["*"])
        size = page_size or self.settings.page_size
        return self._paged(search_base, str(filter), _SCOPES[scope], attrs, size, limit)

    def _paged(
        self, base: str, flt: str, scope: str, attrs: list[str], size: int, limit: int | None
    ) -> Iterator[DirectoryObject]:
        cookie: bytes | None = None
        yielded = 0
        first = True
        paging_conn: ldap3.Connection | None = None
        try:
            while True:
                current = cookie

                def page(c: ldap3.Connection, current: bytes | None = current) -> Any:
                    return c.search(base, flt, search_scope=scope, attributes=attrs, paged_size=size,
                                    paged_cookie=current)

                if first:
                    outcome = self._call(f"search under {base}", page, write=False, dn=base)
                else:
                    # Paging state lives in the server connection: a reconnect cannot resume it.
                    outcome = self._page_same_connection(page, base, yielded, paging_conn)
                _, result, response = outcome
                del outcome
                code = int(result.get("result", 0))
                if code == 32 and first:
                    raise NotFound(f"search base {base} does not exist", result_code=32,
                                   description=str(result.get("description") or ""),
                                   ldap_message=str(result.get("message") or ""), dn=base)
                if code not in (0, 4):  # 4: sizeLimitExceeded still carries entries
                    raise _error_from_result(f"search under {base}", result, base)
                if first:
                    paging_conn = self._conn
                first = False
                # Taken before yielding: if the caller stops early, `finally` abandons this page's
                # cookie, which is the server-side state still open.
                cookie = (
                    ((result.get("controls") or {}).get(_PAGED_OID) or {}).get("value", {}).get("cookie")
                ) or None
                # Entries are popped as they are yielded: a consumed entry is freed at once, and
                # nothing of this page is left alive while the next page is received and decoded.
                response.reverse()
                while response:
                    entry = response.pop()
                    if entry.get("type") != "searchResEntry":
                        continue
                    obj = self._complete_ranges(entry)
                    del entry
                    yield obj
                    yielded += 1
                    if limit is not None and yielded >= limit:
                        return
                if cookie is None:
                    return
        finally:
            if cookie and self._conn is paging_conn:
                self._abandon_paging(base, flt, scope, cookie)

    def _page_same_connection(
        self, fn: Callable[[ldap3.Connection], Any], base: str, yielded: int, expected: ldap3.Connection | None
    ) -> tuple:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn is not expected:
                raise ServerDown(f"search under {base} interrupted after {yielded} objects: connection lost", dn=base)
            try:
                status, result, response = _outcome(conn, fn(conn))
            except (*_BEFORE_SEND, *_AFTER_SEND) as exc:
                self.close()
                raise ServerDown(
                    f"search under {base} interrupted after {yielded} objects: {exc}", dn=base
                ) from exc
        return status, result, response

    def _abandon_paging(self, base: str, flt: str, scope: str, cookie: bytes) -> None:
        """Tell the server to drop an unfinished paged search (page size 0 with the cookie)."""
        with self._lock, contextlib.suppress(Exception):
            conn = self._conn
            if conn is not None and not conn.closed:
                _outcome(conn, conn.search(base, flt, search_scope=scope, attributes=["1.1"], paged_size=0,
                                           paged_cookie=cookie))

    def find(
        self,
        *,
        name_or_mail_or_alias: str,
        kinds: Iterable[str] = RECIPIENT_KINDS,
        base: str | None = None,
        attributes: Sequence[str] | None = None,
        prefix: bool = False,
        anywhere: bool = False,
        limit: int | None = None,
    ) -> Iterator[DirectoryObject]:
        """Objects whose name, display name, account name, alias, UPN, mail or any proxy address
        equals the text (or starts with it when ``prefix``). The text is always matched literally.

        ``anywhere``: the text anywhere in the name, display name, surname, given name, account name,
        alias, UPN, mail or any proxy address (a person searching knows part of a name or address).
        """
        text = name_or_mail_or_alias.strip() if isinstance(name_or_mail_or_alias, str) else None
        if not text:
            raise InvalidFilter("give a name, mail address or alias to look for")
        if anywhere:
            terms = [contains(a, text) for a in ("cn", "displayName", "sn", "givenName", "sAMAccountName",
                                                 "mailNickname", "mail", "userPrincipalName", "proxyAddresses")]
            return self.search(filter=all_of(kind_filter(kinds), any_of(*terms)), base=base, attributes=attributes,
                               limit=limit)
        match = starts_with if prefix else eq
        terms = [
            match(a, text)
            for a in ("cn", "name", "displayName", "sAMAccountName", "mailNickname", "mail", "userPrincipalName")
        ]
        if re.match(r"^[A-Za-z0-9]{2,10}:", text):  # typed with its prefix: smtp:, SMTP:, X500:, sip:
            terms.append(match("proxyAddresses", text))
        elif "@" in text:
            terms.append(match("proxyAddresses", "smtp:" + text))  # AD matches case-insensitively
        flt = all_of(kind_filter(kinds), any_of(*terms))
        return self.search(filter=flt, base=base, attributes=attributes, limit=limit)

    def find_one(self, *, name_or_mail_or_alias: str, kinds: Iterable[str] = RECIPIENT_KINDS,
                 base: str | None = None, attributes: Sequence[str] | None = None) -> DirectoryObject:
        found = list(self.find(name_or_mail_or_alias=name_or_mail_or_alias, kinds=kinds, base=base,
                               attributes=attributes, limit=11))
        if not found:
            raise NotFound(f"nothing matches {name_or_mail_or_alias!r}")
        if len(found) > 1:
            raise Ambiguous(f"{len(found) if len(found) <= 10 else 'more than 10'} objects match "
                            f"{name_or_mail_or_alias!r}", candidates=[o.dn for o in found[:10]])
        return found[0]

    def iter_values(self, dn: str, attribute: str, *, step: int | None = None) -> Iterator[str]:
        """Every value of a (large) multi-valued attribute, read in explicit ranges.

        ``member;range=0-1499``, then from the server's upper bound + 1, until it answers with
        ``*`` as upper bound; each value is yielded exactly once and only one range is in memory.
        """
        if not _valid_attr_name(attribute):
            raise AdError(f"{attribute!r} is not a valid attribute name")
        for value in self._iter_raw_values(str(parse_dn(dn)), attribute, start=0, step=step):
            yield value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value

    def _iter_raw_values(self, dn: str, attribute: str, *, start: int, step: int | None = None) -> Iterator[bytes]:
        step = step or self.settings.range_step
        low = start
        prefix = attribute.lower() + ";range="
        while True:
            wanted = f"{attribute};range={low}-{low + step - 1}"
            outcome = self._call(
                f"read {attribute} of {dn}",
                lambda c, wanted=wanted: c.search(dn, str(MATCH_ALL), search_scope=BASE, attributes=[wanted]),
                write=False,
                dn=dn,
            )
            _, result, response = outcome
            code = int(result.get("result", 0))
            if code == 32:
                raise NotFound(f"no object {dn}", result_code=32, dn=dn,
                               ldap_message=str(result.get("message") or ""))
            if code != 0:
                raise _error_from_result(f"read {attribute} of {dn}", result, dn)
            entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
            raw = entries[0]["raw_attributes"] if entries else {}
            key = next((k for k in raw if k.lower().startswith(prefix)), None)
            if key is None:
                plain = next((k for k in raw if k.lower() == attribute.lower()), None)
                if plain is not None and low == 0:
                    yield from raw[plain]  # a server that ignores ranges sends everything at once
                return
            yield from raw[key] or ()  # Samba answers a range past the end with an empty 'N-*'
            high = key.split("=", 1)[1].partition("-")[2]
            if high == "*":
                return
            next_low = int(high) + 1
            if next_low <= low:  # a server must always advance; guard against a loop
                raise AdError(f"the server returned range {key} for a request from {low}")
            low = next_low

    # ---- writing

    def add(self, dn: str, *, object_class: str | Sequence[str], attributes: Mapping[str, Any] | None = None) -> str:
        """Create an object; returns its canonical DN."""
        target = str(parse_dn(dn))
        classes = [object_class] if isinstance(object_class, str) else list(object_class)
        attrs = {k: _ldap_values(v) for k, v in (attributes or {}).items() if v is not None}
        attrs = {k: v for k, v in attrs.items() if v}
        for key in attrs:
            _check_attr_name(key)
        outcome = self._call(
            f"add {target}", lambda c: c.add(target, object_class=classes, attributes=attrs), write=True, dn=target
        )
        self._ok(f"add {target}", outcome, target)
        return target

    def add_many(self, entries: Iterable[NewEntry], *, window: int = 64) -> int:
        """Create many objects fast: requests are pipelined, ``window`` in flight at a time.

        Stops at the first failure and raises its error. Objects added before it stay, and the
        requests already in flight behind it (fewer than ``window``) may still be applied. Returns
        the number of objects created. Uses a dedicated connection, closed at the end.
        """
        conn = self._new_connection(ldap3.ASYNC)
        pending: list[tuple[int, str]] = []
        created = 0

        def collect(message_id: int, target: str) -> None:
            nonlocal created
            try:
                _, result = conn.get_response(message_id, get_request=False)
            except ldap_exc.LDAPOperationResult as exc:  # not raised with raise_exceptions=False
                result = {"result": exc.result, "description": exc.description, "message": exc.message}
            except (*_BEFORE_SEND, *_AFTER_SEND) as exc:
                raise OutcomeUnknown(f"bulk add interrupted at {target} after {created} objects: {exc}") from exc
            if int(result.get("result", 0)) != 0:
                raise _error_from_result(f"add {target}", result, target)
            created += 1

        try:
            for item in entries:
                target = str(parse_dn(item.dn))
                classes = [item.object_class] if isinstance(item.object_class, str) else list(item.object_class)
                attrs = {k: _ldap_values(v) for k, v in item.attributes.items() if v is not None}
                attrs = {k: v for k, v in attrs.items() if v}
                try:
                    message_id = conn.add(target, object_class=classes, attributes=attrs)
                except (*_BEFORE_SEND, *_AFTER_SEND) as exc:
                    raise OutcomeUnknown(f"bulk add interrupted at {target} after {created} objects: {exc}") from exc
                pending.append((message_id, target))
                if len(pending) >= window:
                    collect(*pending.pop(0))
            while pending:
                collect(*pending.pop(0))
        finally:
            # ldap3's receiver thread spins on a closed socket while a receive timeout is set: clear
            # it, close, and let the thread end, or the process crawls after every bulk add.
            receiver = getattr(conn.strategy, "receiver", None)
            conn.receive_timeout = None
            self._discard(conn)
            if receiver is not None:
                receiver.join(timeout=2)
        return created

    def modify(
        self,
        dn: str,
        *,
        replace: Mapping[str, Any] | None = None,
        add: Mapping[str, Any] | None = None,
        delete: Mapping[str, Any] | None = None,
    ) -> None:
        """Change attributes in one atomic modify.

        ``replace={"mail": "a@b"}`` sets values (``None``/``[]`` clears the attribute);
        ``add`` adds values; ``delete`` removes the given values (``None``/``[]``: all values).
        """
        target = str(parse_dn(dn))
        changes: dict[str, list[tuple[str, list[Any]]]] = {}
        for op, mapping in ((MODIFY_REPLACE, replace), (MODIFY_ADD, add), (MODIFY_DELETE, delete)):
            for name, value in (mapping or {}).items():
                _check_attr_name(name)
                values = _ldap_values(value)
                if op == MODIFY_ADD and not values:
                    continue
                changes.setdefault(name, []).append((op, values))
        if not changes:
            return
        outcome = self._call(f"modify {target}", lambda c: c.modify(target, changes), write=True, dn=target)
        self._ok(f"modify {target}", outcome, target)

    def add_values(self, dn: str, attribute: str, values: Iterable[Any], *, batch_size: int = 500) -> int:
        """Add many values (e.g. group members) in modifies of ``batch_size``; returns the count."""
        return self._batched(dn, attribute, values, batch_size, "add")

    def remove_values(self, dn: str, attribute: str, values: Iterable[Any], *, batch_size: int = 500) -> int:
        return self._batched(dn, attribute, values, batch_size, "delete")

    def _batched(self, dn: str, attribute: str, values: Iterable[Any], batch_size: int, op: str) -> int:
        total = 0
        batch: list[Any] = []
        for value in values:
            batch.append(value)
            if len(batch) >= batch_size:
                self.modify(dn, **{op: {attribute: batch}})
                total += len(batch)
                batch = []
        if batch:
            self.modify(dn, **{op: {attribute: batch}})
            total += len(batch)
        return total

    def move(self, dn: str, new_parent: str) -> str:
        """Move an object under another container, keeping its RDN; returns the new DN.

        Links (group membership, managedBy, delivery restrictions) follow the object.
        """
        source = parse_dn(dn)
        parent = parse_dn(new_parent)
        target = f"{source.rdn},{parent}"
        outcome = self._call(
            f"move {source}",
            lambda c: c.modify_dn(str(source), source.rdn, delete_old_dn=True, new_superior=str(parent)),
            write=True,
            dn=str(source),
        )
        self._ok(f"move {source} to {parent}", outcome, str(source))
        return target

    def rename(self, dn: str, new_name: str, *, attribute: str | None = None) -> str:
        """Give an object a new RDN value (``CN=new_name``) in the same container."""
        source = parse_dn(dn)
        new_rdn = rdn(attribute or source.rdn_type, new_name)
        target = f"{new_rdn},{source.parent}" if len(source.rdns) > 1 else new_rdn
        outcome = self._call(
            f"rename {source}",
            lambda c: c.modify_dn(str(source), new_rdn, delete_old_dn=True),
            write=True,
            dn=str(source),
        )
        self._ok(f"rename {source}", outcome, str(source))
        return target

    def delete(self, dn: str, *, recursive: bool = False) -> None:
        """Delete an object (``recursive``: with everything below it, via the tree-delete control)."""
        target = str(parse_dn(dn))
        controls = [(_TREE_DELETE_OID, True, None)] if recursive else None
        outcome = self._call(f"delete {target}", lambda c: c.delete(target, controls=controls), write=True,
                             dn=target)
        self._ok(f"delete {target}", outcome, target)

    # ---- typed creators

    def create_ou(self, *, parent: str, name: str, description: str | None = None) -> str:
        return self.add(child_dn(parent, "OU", name), object_class="organizationalUnit",
                        attributes={"description": description})

    def create_contact(
        self,
        *,
        parent: str,
        name: str,
        mail: str | None = None,
        alias: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """A contact (mail contact when ``mail`` is given: targetAddress SMTP:<mail>)."""
        attrs: dict[str, Any] = {"displayName": display_name or name}
        if mail:
            attrs.update({"mail": mail, "targetAddress": f"SMTP:{mail}", "proxyAddresses": [f"SMTP:{mail}"]})
        if alias:
            attrs["mailNickname"] = alias
        attrs.update(attributes or {})
        return self.add(child_dn(parent, "CN", name), object_class="contact", attributes=attrs)

    def create_group(
        self,
        *,
        parent: str,
        name: str,
        sam_account_name: str | None = None,
        group_type: int = 8,  # universal distribution group
        mail: str | None = None,
        alias: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        attrs: dict[str, Any] = {"groupType": group_type, "sAMAccountName": sam_account_name or _sam_from(name),
                                 "displayName": name}
        if mail:
            attrs.update({"mail": mail, "proxyAddresses": [f"SMTP:{mail}"]})
        if alias:
            attrs["mailNickname"] = alias
        attrs.update(attributes or {})
        return self.add(child_dn(parent, "CN", name), object_class="group", attributes=attrs)

    def create_dynamic_distribution_list(
        self,
        *,
        parent: str,
        name: str,
        alias: str,
        recipient_filter: Filter,
        search_base: str | None = None,
        mail: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """An Exchange dynamic distribution list (msExchDynamicDistributionList).

        Its membership is ``recipient_filter`` (stored in msExchDynamicDLFilter) evaluated under
        ``search_base`` (msExchDynamicDLBaseDN, default the domain). As Exchange does, it is marked
        msExchRecipientDisplayType 3 and msExchRecipientTypeDetails 2048.
        """
        if not isinstance(recipient_filter, Filter):
            raise InvalidFilter("recipient_filter must be a Filter built by the helper functions")
        attrs: dict[str, Any] = {
            "displayName": name,
            "mailNickname": alias,
            "msExchDynamicDLFilter": str(recipient_filter),
            "msExchDynamicDLBaseDN": validate_dn(search_base or self.settings.base_dn),
            "msExchRecipientDisplayType": 3,
            "msExchRecipientTypeDetails": 2048,
        }
        if mail:
            attrs.update({"mail": mail, "proxyAddresses": [f"SMTP:{mail}"]})
        attrs.update(attributes or {})
        return self.add(child_dn(parent, "CN", name), object_class=["top", "msExchDynamicDistributionList"],
                        attributes=attrs)

    def dynamic_members(self, dl_dn: str, *, attributes: Sequence[str] | None = None) -> Iterator[DirectoryObject]:
        """The current members of a dynamic DL: its stored filter evaluated under its base."""
        dl = self.read(dl_dn, attributes=["msExchDynamicDLFilter", "msExchDynamicDLBaseDN"])
        stored = dl.first("msExchDynamicDLFilter")
        if not stored:
            raise ConstraintViolation(f"{dl_dn} has no msExchDynamicDLFilter")
        # The stored text was written by this connector (or by Exchange); it is the directory's
        # own data, sent back as-is, never text typed by a portal user.
        return self._paged(
            str(parse_dn(dl.first("msExchDynamicDLBaseDN") or self.settings.base_dn)),
            stored, SUBTREE, self._attribute_list(attributes or ["*"]), self.settings.page_size, None,
        )

    # ---- address repair: the objects Entra Connect exports (one self-contained method, easy to move)

    def iter_in_scope(
        self, *, bases: Sequence[str], kinds: Iterable[str] = ("user", "group", "contact"),
        attributes: Sequence[str] | None = None, page_size: int | None = None,
    ) -> Iterator[DirectoryObject]:
        """Every object of ``kinds`` under each of ``bases`` (the sync OUs), paged: one page in memory at a time.

        An OU nested in another listed one is read once (its objects come with the outer OU).
        """
        parsed = [parse_dn(b) for b in bases]
        outer = [b for b in parsed if not any(o.normalized() != b.normalized() and b.is_within(o) for o in parsed)]
        seen: set = set()
        flt = kind_filter(kinds)
        for base in outer:
            if base.normalized() in seen:
                continue
            seen.add(base.normalized())
            yield from self.search(filter=flt, base=str(base), attributes=attributes, page_size=page_size)

    # ---- connectivity check

    def check(self, *, required_ous: Sequence[str] = ()) -> CheckReport:
        """Connectivity check for the settings page and ``manage.py`` diagnostics; never raises.

        Items: connect and bind, naming context matches ``base_dn``, Exchange schema complete
        (exchange_schema.schema_missing), each of ``required_ous`` exists.
        """
        from portal.lab import exchange_schema

        s = self.settings
        items: list[CheckItem] = []
        naming: str | None = None
        mode = "LDAPS" if s.use_ssl else ("StartTLS" if s.start_tls else "plain LDAP")
        who = "Kerberos (GSSAPI)" if s.auth == "gssapi" else (s.bind_dn or "anonymous")
        try:
            dse = self.root_dse()
            items.append(CheckItem("bind", True, f"bound to {s.url} ({mode}) as {who}"))
        except AdError as exc:
            items.append(CheckItem("bind", False, f"{s.url} ({mode}) as {who}: {exc}"))
            return CheckReport(False, s.url, None, tuple(items))
        naming = (dse.get("defaultNamingContext") or [None])[0]
        contexts = dse.get("namingContexts") or []
        if any(same_dn(s.base_dn, c) or parse_dn(s.base_dn).is_within(c) for c in contexts):
            items.append(CheckItem("naming context", True, f"{s.base_dn} is served (default {naming})"))
        else:
            items.append(CheckItem("naming context", False, f"{s.base_dn} is not among {contexts}"))
        try:
            with self._lock:
                conn = self._connection()
                try:
                    missing = exchange_schema.schema_missing(conn)
                finally:
                    conn.response = None  # do not keep the schema entries alive on the connection
            items.append(CheckItem(
                "exchange schema", not missing,
                "all Exchange attributes present" if not missing else "missing: " + ", ".join(missing[:20])
                + (f" and {len(missing) - 20} more" if len(missing) > 20 else ""),
            ))
        except Exception as exc:  # the check reports, it does not fail
            items.append(CheckItem("exchange schema", False, f"cannot read the schema: {exc}"))
        for ou in required_ous:
            try:
                obj = self.read(ou, attributes=["objectClass"])
                items.append(CheckItem(f"OU {ou}", True, f"exists ({obj.kind})"))
            except AdError as exc:
                items.append(CheckItem(f"OU {ou}", False, str(exc)))
        return CheckReport(all(i.ok for i in items), s.url, naming, tuple(items))


def _check_attr_name(name: str) -> None:
    if not isinstance(name, str) or not _valid_attr_name(name):
        raise ConstraintViolation(f"{name!r} is not a valid attribute name")


def _sam_from(name: str) -> str:
    cleaned = re.sub(r'[\\/\[\]:;|=,+*?<>"@\s]', "", name)[:20]
    return cleaned or "grp" + str(abs(hash(name)) % 10**8)
