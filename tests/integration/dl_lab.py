"""A fresh synced distribution list in the lab for the DL page and command-line tests (the lab persists
across runs, so a named seed list can be migrated only once)."""

from __future__ import annotations

import uuid

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors.registry import active_directory, entra_connect, exchange_online


def sync_now() -> None:
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=120, poll=0.2)
        sync.start_sync_cycle(policy="Delta")
        assert sync.wait_until_idle(timeout=120, poll=0.2)


def remote_mailboxes(count: int) -> list[str]:
    flt = adc.all_of(adc.object_class("user"), adc.eq("msExchRecipientTypeDetails", 2147483648),
                     adc.present("mail"), adc.present("mailNickname"))
    with active_directory() as directory:
        found = sorted(o.dn for o in directory.search(filter=flt, attributes=["mail", "proxyAddresses"])
                       if o.first("mail").endswith("@contoso.com") and ".." not in o.first("mail")
                       and all(p.count("@") == 1 for p in o.get("proxyAddresses") if p.lower().startswith("smtp:")))
    return found[:count]


def fresh_list(manifest, *, prefix: str, members: int = 6) -> tuple[str, str]:
    """Create a synced distribution list with `members` remote mailboxes; returns (mail, dn)."""
    alias = f"{prefix}-{uuid.uuid4().hex[:8]}"
    mail = f"{alias}@contoso.com"
    with active_directory() as directory:
        dn = directory.create_group(
            parent=manifest.ous["groups"], name=f"{prefix.title()} {alias}", mail=mail, alias=alias,
            sam_account_name=alias,
            attributes={"proxyAddresses": [f"SMTP:{mail}", f"smtp:{alias}@contoso.mail.onmicrosoft.com"],
                        "msExchRecipientTypeDetails": 256, "msExchRecipientDisplayType": 1,
                        "legacyExchangeDN": f"/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/"
                                            f"cn=Recipients/cn={alias}"})
        directory.add_values(dn, "member", remote_mailboxes(members))
    sync_now()
    with exchange_online() as exchange:
        try:
            assert exchange.get_distribution_group(mail).is_dir_synced
        except exo.ObjectNotFound:
            raise AssertionError(f"{mail} did not reach the lab cloud") from None
    return mail, dn
