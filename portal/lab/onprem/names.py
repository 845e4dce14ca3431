"""DNs and canonical names."""

from __future__ import annotations

import re

from portal.connectors import ad


def domain_name(base_dn: str) -> str:
    return ".".join(v for rdn in ad.parse_dn(base_dn).rdns for t, v in rdn if t.lower() == "dc")


def canonical_name(dn: str) -> str:
    """``CN=X,OU=Groups,DC=lab,DC=example`` -> ``lab.example/Groups/X`` (how Exchange shows an identity)."""
    rdns = ad.parse_dn(dn).rdns
    domain: list[str] = []
    rest = list(rdns)
    while rest and rest[-1][0][0].lower() == "dc":
        domain.insert(0, rest.pop()[0][1])
    path = [rdn[0][1].replace("/", "\\/") for rdn in reversed(rest)]
    return "/".join([".".join(domain), *path])


def _split_canonical(text: str) -> list[str]:
    parts = re.split(r"(?<!\\)/", text)
    return [p.replace("\\/", "/") for p in parts]
