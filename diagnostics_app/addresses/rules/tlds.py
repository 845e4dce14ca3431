"""Top-level domains for IdFix's TopLevelDomain error.

IdFix ships the whole IANA list (Settings/ValidTLDList.cs). The portal keeps no copy of a list that
changes every month: a two-letter TLD is a country code, the generic TLDs below are the ones
directories use, and the TLD of every verified domain of the tenant counts, as do the ones an admin
adds in settings (ADDRESS_REPAIR_EXTRA_TLDS). What this must catch is the non-routable suffix
(``.local``, ``.lan``, ``.corp``, ``.internal``), and it does.
"""

from __future__ import annotations

from collections.abc import Iterable

GENERIC = frozenset("""
com net org edu gov mil int arpa info biz name pro aero coop museum mobi asia tel travel jobs cat post xxx
app dev cloud online site tech store shop blog page email news media group global world company services
solutions consulting digital network systems agency studio design business center international support
academy school university college health care clinic law legal finance bank insurance capital partners
energy engineering games live life today team space zone one works tools plus inc ltd llc gmbh berlin london
paris nyc tokyo amsterdam brussels wien swiss africa lat bayern scot wales eus gal quebec
""".split())


def is_valid_tld(tld: str, extra: Iterable[str] = ()) -> bool:
    tld = tld.lower()
    if len(tld) == 2 and tld.isascii() and tld.isalpha():
        return True
    return tld in GENERIC or tld in {e.lower() for e in extra}
