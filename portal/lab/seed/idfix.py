"""The IdFix cases: one object per error type IdFix reports, and the whitespace and certificate-id cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.connectors.ad import NewEntry
from portal.lab import layout

from .values import (
    GROUP_CLASSES,
    GROUP_UNIVERSAL_DISTRIBUTION,
    RDT_DISTRIBUTION_GROUP,
    RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
)


class IdFixCases:
    """Mixed into the plan's builder (plan.py), whose naming and recipient helpers it uses."""

    def _idfix_cases(self, users_ou: str, contacts_ou: str, groups_ou: str,
                     special: Callable[..., NewEntry]) -> None:
        def user(key: str, idfix: str, attribute: str, value: Any, *, overrides: dict[str, Any] | None = None,
                 first: str | None = None, last: str | None = None, note: str = "") -> NewEntry:
            p = self.person(first, last)
            changes = {attribute: value, **(overrides or {})}
            entry = self.remote_mailbox(users_ou, p, overrides=changes)
            expected = {attribute: [] if value is None else (value if isinstance(value, list) else [value])}
            facts: dict[str, Any] = {"idfix_class": idfix, "attribute": attribute, "attributes": expected}
            if note:
                facts["note"] = note
            return special(key, entry, **facts)

        def proxies_with(p_alias: str, bad: str) -> list[str]:
            return [f"SMTP:{p_alias}@{layout.PRIMARY_DOMAIN}", bad, f"smtp:{p_alias}@{layout.ROUTING_DOMAIN}"]

        # character
        user("idfix_character", "character", "mailNickname", "anna?^|berg", first="Anna", last="Berg",
             note="mailNickname holds ? ^ |")
        p_alias = self._peek_alias("Carla", "Costa")
        user("idfix_character", "character", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}(old)@{layout.PRIMARY_DOMAIN}"), first="Carla", last="Costa",
             note="a proxy address holds ( )")
        user("idfix_character", "character", "userPrincipalName", f"tom&jerry.{self.seed}@{layout.PRIMARY_DOMAIN}",
             note="userPrincipalName holds &")
        user("idfix_character", "character", "userPrincipalName", f"zoë.müller.{self.seed}@{layout.PRIMARY_DOMAIN}",
             first="Zoe", last="Muller", note="userPrincipalName holds umlauts")
        # format
        user("idfix_format", "format", "mail", f"bob.smith.{self.seed}@@{layout.PRIMARY_DOMAIN}",
             note="mail has two @")
        p_alias = self._peek_alias("Greta", "Gruber")
        user("idfix_format", "format", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}.{layout.PRIMARY_DOMAIN}"), first="Greta", last="Gruber",
             note="an smtp proxy address without @")
        user("idfix_format", "format", "mailNickname", ".leading.period", note="mailNickname begins with a period")
        # topleveldomain
        user("idfix_topleveldomain", "topleveldomain", "userPrincipalName",
             f"kim.lee.{self.seed}@{layout.NON_ACCEPTED_DOMAIN}", note="UPN suffix .local is not routable")
        p_alias = self._peek_alias("Hugo", "Haddad")
        user("idfix_topleveldomain", "topleveldomain", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}@{layout.NON_ACCEPTED_DOMAIN}"), first="Hugo", last="Haddad",
             note="a proxy address in .local")
        # domainpart
        p_alias = self._peek_alias("Ivan", "Ibrahim")
        user("idfix_domainpart", "domainpart", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}@contoso..com"), first="Ivan", last="Ibrahim",
             note="empty label in the domain")
        user("idfix_domainpart", "domainpart", "mail", f"lee.{self.seed}@contoso_corp.com",
             note="underscore in the domain")
        # localpart
        p_alias = self._peek_alias("Julia", "Jansen")
        user("idfix_localpart", "localpart", "proxyAddresses",
             proxies_with(p_alias, f"smtp:.{p_alias}@{layout.PRIMARY_DOMAIN}"), first="Julia", last="Jansen",
             note="local part begins with a period")
        user("idfix_localpart", "localpart", "mail", f"karin..kim.{self.seed}@{layout.PRIMARY_DOMAIN}",
             note="two periods in a row in the local part")
        # duplicate: the same proxy address, mail and mailNickname on two objects each
        shared_proxy = f"smtp:helpdesk@{layout.PRIMARY_DOMAIN}"
        for first in ("Lars", "Lena"):
            p_alias = self._peek_alias(first, "Larsen")
            user("idfix_duplicate", "duplicate", "proxyAddresses", proxies_with(p_alias, shared_proxy),
                 first=first, last="Larsen", note=f"{shared_proxy} is on two users")
        shared_mail = f"info@{layout.PRIMARY_DOMAIN}"
        for first in ("Marco", "Maria"):
            user("idfix_duplicate", "duplicate", "mail", shared_mail, first=first, last="Meyer",
                 note=f"mail {shared_mail} is on two users")
        for first in ("Nils", "Nadia"):
            user("idfix_duplicate", "duplicate", "mailNickname", "nielsen", first=first, last="Nielsen",
                 note="mailNickname nielsen is on two users")
        # blank: required values missing (an empty LDAP value cannot exist)
        user("idfix_blank", "blank", "mailNickname", None, note="mail-enabled user without mailNickname")
        user("idfix_blank", "blank", "mail", None, note="remote mailbox without mail")
        p = self.person()
        contact = self.mail_contact(contacts_ou, f"{p.display} (blank target)",
                                    f"{p.alias}@{layout.EXTERNAL_DOMAINS[1]}", p.alias, target=False)
        special("idfix_blank", contact, idfix_class="blank", attribute="targetAddress",
                attributes={"targetAddress": []}, note="mail contact without targetAddress")
        alias = self.unique_alias("no-display-name-list")
        group = NewEntry(self.unique_cn(groups_ou, "No Display Name List", alias), GROUP_CLASSES, {
            "sAMAccountName": self.unique_sam(alias), "groupType": GROUP_UNIVERSAL_DISTRIBUTION,
            "mail": f"{alias}@{layout.PRIMARY_DOMAIN}", "mailNickname": alias,
            "proxyAddresses": [f"SMTP:{alias}@{layout.PRIMARY_DOMAIN}"],
            "msExchRecipientTypeDetails": RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
            "msExchRecipientDisplayType": RDT_DISTRIBUTION_GROUP,
        })
        special("idfix_blank", group, idfix_class="blank", attribute="displayName", attributes={"displayName": []},
                note="mail-enabled group without displayName")
        # length (mailNickname over 64 cannot be stored: the schema's rangeUpper refuses it)
        long_local = "a" * 70
        user("idfix_length", "length", "userPrincipalName", f"{long_local}.{self.seed}@{layout.PRIMARY_DOMAIN}",
             note="UPN local part longer than 64")
        p_alias = self._peek_alias("Olga", "Olsen")
        long_x500 = f"X500:/o=ExchangeLabs/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={'f' * 240}-{p_alias}"
        user("idfix_length", "length", "proxyAddresses", proxies_with(p_alias, long_x500), first="Olga", last="Olsen",
             note=f"a proxy address of {len(long_x500)} characters (over 256)")
        user("idfix_length", "length", "sAMAccountName", f"averyverylongaccount{self.seed}x",
             overrides={"userPrincipalName": None}, note="sAMAccountName over 20 characters and no UPN")
        # whitespace (IdFix reports it as a character error)
        user("idfix_whitespace", "character", "displayName", " Pieter Peeters", first="Pieter", last="Peeters",
             note="leading space in displayName")
        user("idfix_whitespace", "character", "displayName", "Rosa Romano ", first="Rosa", last="Romano",
             note="trailing space in displayName")
        p_alias = self._peek_alias("Sven", "Smit")
        user("idfix_whitespace", "character", "proxyAddresses",
             proxies_with(p_alias, f"smtp: {p_alias}@{layout.SECONDARY_DOMAIN}"), first="Sven", last="Smit",
             note="a space after smtp:")
        user("idfix_whitespace", "character", "userPrincipalName",
             f"tara torres.{self.seed}@{layout.PRIMARY_DOMAIN}", first="Tara", last="Torres",
             note="space inside the UPN")
