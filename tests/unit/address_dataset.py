"""A varied, deterministic directory for the address rules: every kind of good and bad value the rules look at,
mixed at random (a fixed seed) over users, groups, contacts and computers, with a tenant that holds twins (by
anchor and by DN, cloud-managed, Exchange-cloud-managed), cloud-only duplicates, soft-match candidates of the
same and of another type, cloud contacts, and export errors. test_address_golden.py pins the findings on it, so
that a change made for speed cannot change what the scan reports."""

from __future__ import annotations

import random

from diagnostics_app.addresses.rules import CloudObject, ExportError, ScanConfig, entry

DOMAIN, INITIAL = "contoso.com", "contoso.onmicrosoft.com"
X500 = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={n:08x}-user"
# Values shared by several objects and the tenant: duplicates within and across attributes.
SHARED = ["shared1@contoso.com", "Shared2@Contoso.com", "shared3@fabrikam.com", "cloudonly@contoso.com"]

CONFIGS = {
    "full": ScanConfig(verified_domains=(DOMAIN, "fabrikam.com", "contoso.mail.onmicrosoft.com"),
                       initial_domain=INITIAL, certificate_attribute="altSecurityIdentities", extra_tlds=("corp",)),
    "bare": ScanConfig(),
}


def _upn(r: random.Random, alias: str):
    return r.choice([
        f"{alias}@{DOMAIN}", f"{alias}@{DOMAIN}", f"{alias}@{DOMAIN}", f"{alias}@corp.local", f"{alias}&x@{DOMAIN}",
        f"{alias} x@{DOMAIN}", "l" * 70 + f"@{DOMAIN}", f"{alias}.@{DOMAIN}", alias, f"{alias}@@{DOMAIN}",
        f"{alias}ü@{DOMAIN}", f"{alias}\x01@{DOMAIN}", f"{alias}\ud800@{DOMAIN}", b"\xff\xfe", 42, None, "",
        f"{alias}@{'d' * 50}.com", r.choice(SHARED), f"{alias}@{INITIAL}", f"{alias}@fabrikam.com",
        f"{alias}@unverified.org", f"{alias}#^~@{DOMAIN}", f"{alias}@contoso.museum"])


def _mail(r: random.Random, alias: str):
    return r.choice([
        f"{alias}@{DOMAIN}", f"{alias}@{DOMAIN}", f"{alias}@{DOMAIN}", None, "", f"{alias}@@{DOMAIN}",
        f"{alias}@contoso_corp.com", f"{alias}..x@{DOMAIN}", f"{alias}@contoso.local", f" {alias}@{DOMAIN}",
        "m" * 10_000, r.choice(SHARED), f"{alias}.new@{DOMAIN}", f"{alias}@ext.corp", f"{alias}@{INITIAL}",
        f"{alias}@unverified.org", f"{alias}\x7f@{DOMAIN}", 3.5, [f"{alias}@{DOMAIN}", f"{alias}2@{DOMAIN}"]])


def _proxies(r: random.Random, alias: str, n: int):
    pool = [f"SMTP:{alias}@{DOMAIN}", f"smtp:{alias}.alt@{DOMAIN}", X500.format(n=n), "X400:c=US;a= ;p=Contoso;s=x",
            f"sip:{alias}@{DOMAIN}", "nocolon", f"smtp:{alias}:b@{DOMAIN}", "x500:/o=" + "x" * 300,
            f"SMTP:{alias}<b>@{DOMAIN}", f"smtp:{alias}@{DOMAIN}", f"SMTP:{alias}.second@{DOMAIN}",
            "x500:/o=MicrosoftOnline/ou=External/cn=Recipients/cn=abc", f"smtp:{alias}@{INITIAL}",
            f"smtp:{alias}@unverified.org", "smtp:" + r.choice(SHARED), "SMTP:" + r.choice(SHARED),
            f"SMTP:{alias}@{DOMAIN}", f"smtp:{alias}\x02@{DOMAIN}", f"smtp:{alias}@contoso.local", b"\xc3\x28",
            "X.400:c=US;p=(x)", f"MS:CONTOSO/{alias}", f"smtp:{alias}@contoso.mail.onmicrosoft.com",
            f"SMTP:{alias}@x.y", "smtp:", f"smtp:{alias}..z@{DOMAIN}", "SMTP:" + "p" * 260 + f"@{DOMAIN}"]
    kind = r.random()
    if kind < 0.25:
        return [f"SMTP:{alias}@{DOMAIN}", f"smtp:{alias}.alt@{DOMAIN}"]
    if kind < 0.32:
        return [X500.format(n=n)]
    if kind < 0.40:
        return None
    return r.sample(pool, r.randint(1, 5))


def _user_like(r: random.Random, n: int, kind: str) -> dict:
    alias = r.choice([f"user{n:04d}", f"User.{n}", f"u{n}-x", f"a_{n}"])
    attrs: dict = {
        "cn": r.choice([alias] * 20 + ["krbtgt", f"machine{n}$", "Guest", "HealthMailbox1", f"x\nCNF:{n}"]),
        "displayName": r.choice([f"User {n}"] * 6 + ["", None, f" Lead {n}", "d" * 300, f"Ctl\x03{n}", "MSOL_x"]),
        "givenName": r.choice(["Anna"] * 6 + [None, "g" * 64, "G\x04"]),
        "sAMAccountName": r.choice([alias[:20]] * 6 + [None, f"a/b{n}", "s" * 25, "msol_abc", "CAS_1", f"q{n}"]),
        "userPrincipalName": _upn(r, alias),
        "mail": _mail(r, alias),
        "mailNickname": r.choice([alias] * 6 + [None, f".lead{n}", f"a b{n}", f"a#b{n}", "n" * 70, "CAS_x",
                                               "SystemMailbox{1}", f"nick{n}", "", "sharednick"]),
        "proxyAddresses": _proxies(r, alias, n),
        "msExchRecipientTypeDetails": r.choice(["2147483648"] * 4 + [None, None, "1", "4096", "notanumber", "128"]),
    }
    if r.random() < 0.15:
        attrs["targetAddress"] = r.choice([f"SMTP:{alias}@ext.com", f"{alias}@ext.com", f"smtp:{alias}:b@ext.com",
                                           f"SMTP:{alias}<b@ext.com", "X400:c=US;p=x", "SMTP:shared@ext.com",
                                           f"SMTP:{alias}@ext.local"])
    if r.random() < 0.2:
        attrs["altSecurityIdentities"] = r.sample([
            f"X509:<PN>{alias}@{DOMAIN}", f"x509:<PN>{alias}@{DOMAIN}", f"X509:<pn>{alias}@{DOMAIN}",
            "X509:<FOO>bar", "X509:<I>issuer", "X509:<I>issuer<SR>01", "X509:<RFC822>" + "c" * 1100, "nothing",
            "X509:<PN>shared@contoso.com", "x509:<rfc822>shared@contoso.com", b"\xff"], r.randint(1, 3))
    if r.random() < 0.02:
        attrs["altSecurityIdentities"] = [f"X509:<SKI>{i:04x}{n}" for i in range(11)]
    if r.random() < 0.03:
        attrs["userCertificate"] = [f"cert{i}" for i in range(16)]
    if r.random() < 0.02:
        attrs["thumbnailPhoto"] = b"a" * (101 * 1024)
    if r.random() < 0.03:
        attrs["isCriticalSystemObject"] = "TRUE"
    if r.random() < 0.03:
        attrs["msExchHideFromAddressLists"] = "TRUE"
    if r.random() < 0.05:
        attrs["homeMDB"] = "CN=DB1"
    if kind == "group":
        attrs["groupType"] = r.choice(["8", "2", "-2147483646", "-2147483640", "x"])
    return {k: v for k, v in attrs.items() if v is not None}


def dataset(objects: int = 600, seed: int = 13) -> tuple[list, list[CloudObject], tuple[ExportError, ...]]:
    """(entries, tenant, export errors)."""
    r = random.Random(seed)
    entries, tenant, errors = [], [], []
    for n in range(objects):
        kind = r.choice(["user"] * 6 + ["group"] * 2 + ["contact", "computer"])
        classes = {"user": ["top", "person", "organizationalPerson", "user"], "group": ["top", "group"],
                   "contact": ["top", "person", "contact"], "computer": ["top", "user", "computer"]}[kind]
        if kind == "user" and r.random() < 0.1:
            classes = ["top", "inetOrgPerson"]
        attrs = _user_like(r, n, kind)
        dn = f"CN={attrs.get('cn', n)},OU={kind.title()}s,OU=Sync,DC=contoso,DC=com"
        anchor = f"anchor-{n}" if r.random() < 0.9 else None
        entries.append(entry(dn=dn, object_class=classes, attributes=attrs, anchor=anchor))
        if r.random() < 0.05:
            errors.append(ExportError(dn=dn.upper(), error_type=r.choice(
                ["AttributeValueMustBeUnique", "DataValidationFailed", "LargeObject", "Unknown"]),
                attribute=r.choice(["", "proxyAddresses"]), message=r.choice(["", "refused"])))
        twin = r.random()
        if twin < 0.45 and kind in ("user", "group", "contact"):
            alias = f"twin{n}"
            proxies = r.choice([(f"SMTP:{alias}@{DOMAIN}", f"smtp:{alias}@{INITIAL}"), (), (f"smtp:{alias}@{DOMAIN}",),
                                (f"SMTP:{attrs.get('mail', alias)}",)])
            tenant.append(CloudObject(
                id=f"twin-{n}", kind=kind, display_name=f"Twin {n}",
                user_principal_name=f"{alias}@{DOMAIN}" if kind == "user" else None,
                mail=r.choice([None, f"{alias}@{DOMAIN}"]), mail_nickname=r.choice([None, alias]),
                proxy_addresses=proxies, synced=r.random() < 0.8,
                immutable_id=anchor if r.random() < 0.7 else None,
                on_premises_dn=dn.lower() if r.random() < 0.5 else None,
                cloud_managed=r.random() < 0.1, exchange_cloud_managed=r.random() < 0.15,
                recipient=r.choice([None, "mailbox", "mail_enabled"])))
    for n in range(120):  # cloud-only objects, cloud contacts, soft-match candidates
        kind = r.choice(["user", "user", "group", "contact"])
        address = r.choice([f"cloud{n}@{DOMAIN}", *SHARED, f"user{n:04d}@{DOMAIN}", f"User.{n}@{DOMAIN}"])
        tenant.append(CloudObject(
            id=f"cloud-{n}", kind=kind, display_name=r.choice([f"Cloud {n}", ""]),
            user_principal_name=r.choice([f"cloud{n}@{INITIAL}", f"user{n:04d}@{DOMAIN}", None]),
            mail=r.choice([address, None, f"bad@@{DOMAIN}"]), mail_nickname=r.choice([f"cloud{n}", ".dot", None]),
            proxy_addresses=r.choice([(f"SMTP:{address}",), (f"smtp:{address}", "x500:/o=x"), (),
                                      (f"SMTP:{address}", "SMTP:second@contoso.com")]),
            certificate_user_ids=r.choice([(), ("X509:<PN>shared@contoso.com",)]),
            unified=kind == "group" and r.random() < 0.3, recipient=r.choice([None, "mail_enabled"]),
            target_address=r.choice([None, f"SMTP:{address}", "smtp:a:b@ext.com"]) if kind == "contact" else None))
    return entries, tenant, tuple(errors)
