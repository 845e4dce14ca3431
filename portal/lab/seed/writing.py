"""Seeding a directory: writes the plan through the connector, or recognises a finished seed by its marker
and writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, NewEntry
from portal.connectors.ad.security import (
    protect_from_deletion,
    unprotect_from_deletion,
)
from portal.lab import layout

from .manifest import Manifest
from .plan import build_plan
from .values import MARKER_TAG, Progress, SeedError

# --------------------------------------------------------------------------------------------
# the seed


def seed(
    directory: ActiveDirectory,
    *,
    base_dn: str,
    users: int = 200,
    seed: int = 1,
    reset: bool = False,
    progress: Progress | None = None,
) -> Manifest:
    """Build the lab organisation under ``OU=Contoso,<base_dn>``; return its manifest.

    Returns at once, writing nothing, when the lab already holds this seed. Raises SeedError when
    it holds another one (or an unfinished one) and ``reset`` is false. ``progress`` is called with
    ``(phase, done, total)`` while objects are sent.
    """
    started = time.monotonic()
    plan = build_plan(base_dn=base_dn, users=users, seed=seed)
    org = layout.org_ou(base_dn)
    report = progress or (lambda phase, done, total: None)

    marker = read_marker(directory, base_dn=base_dn)
    if reset and directory.exists(org):
        _delete_org(directory, org, report)
        marker = None
    if marker is not None:
        return _reuse(plan.manifest, marker, started)
    if directory.exists(org):
        raise SeedError(f"{org} exists but holds no seed marker; pass reset=True to delete and rebuild it")

    created = 0
    building = _marker_text(plan.manifest, state="building")
    directory.create_ou(parent=base_dn, name=layout.ORG_OU, description=building)
    created += 1
    for phase, entries in plan.stages:
        created += directory.add_many(_reporting(entries, phase, report))
    for dn, attribute, values in plan.values:
        report("members", 0, len(values))
        directory.add_values(dn, attribute, values, batch_size=1000)
        report("members", len(values), len(values))
    for index, ddl in enumerate(plan.dynamic_lists, start=1):
        directory.create_dynamic_distribution_list(**ddl)
        created += 1
        report("dynamic lists", index, len(plan.dynamic_lists))
    for index, dn in enumerate(plan.protected, start=1):
        protect_from_deletion(directory, dn)
        report("protection", index, len(plan.protected))
    directory.modify(org, replace={"description": _marker_text(plan.manifest, state="complete")})
    report("done", created, created)
    manifest = plan.manifest
    manifest.created = created
    manifest.seconds = round(time.monotonic() - started, 3)
    return manifest


def manifest_for(*, base_dn: str, users: int = 200, seed: int = 1) -> Manifest:
    """The manifest :func:`seed` returns for these parameters, computed without a directory."""
    return build_plan(base_dn=base_dn, users=users, seed=seed).manifest


@dataclass(frozen=True)
class SeedMarker:
    version: int
    users: int
    seed: int
    digest: str
    state: str


def read_marker(directory: ActiveDirectory, *, base_dn: str) -> SeedMarker | None:
    """The seed marker on ``OU=Contoso``; None when the OU or the marker is absent."""
    try:
        org = directory.read(layout.org_ou(base_dn), attributes=["description"])
    except ad.NotFound:
        return None
    for text in org.get("description"):
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict) and data.get("seeder") == MARKER_TAG:
            return SeedMarker(
                version=int(data.get("version", 0)), users=int(data.get("users", 0)), seed=int(data.get("seed", 0)),
                digest=str(data.get("digest", "")), state=str(data.get("state", "")),
            )
    return None


def _marker_text(manifest: Manifest, *, state: str) -> str:
    return json.dumps({
        "seeder": MARKER_TAG, "version": manifest.version, "users": manifest.users, "seed": manifest.seed,
        "digest": manifest.digest, "state": state,
    }, sort_keys=True)


def _reuse(manifest: Manifest, marker: SeedMarker, started: float) -> Manifest:
    held = f"users={marker.users}, seed={marker.seed}, version {marker.version}"
    if marker.state != "complete":
        raise SeedError(f"the lab holds an unfinished seed ({held}); pass reset=True to rebuild it")
    if (marker.users, marker.seed, marker.version) != (manifest.users, manifest.seed, manifest.version):
        raise SeedError(
            f"the lab holds another seed ({held}), not users={manifest.users}, seed={manifest.seed}, "
            f"version {manifest.version}; pass reset=True to replace it"
        )
    if marker.digest != manifest.digest:
        # Same parameters, different content: the seeder changed without a version bump.
        raise SeedError(f"the lab's seed ({held}) was built by a different seeder; pass reset=True to rebuild it")
    manifest.created = 0
    manifest.seconds = round(time.monotonic() - started, 3)
    return manifest


# Delivery restrictions have syntax Object(OR-Name) in the Exchange schema; Samba 4.17 then fails to
# delete an object such a link points at ("Failed to remove backlink of authOrigBL").
OR_NAME_LINKS = ("authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms")


def _delete_org(directory: ActiveDirectory, org: str, report: Progress) -> None:
    """Delete ``OU=Contoso`` and everything below it, one object at a time.

    Not one tree delete: Samba runs it as a single operation that takes minutes for a few
    thousand objects (longer than the connector's timeout), and it fails on OR-Name links. Here
    the delivery restrictions are cleared first, then lists go before their members (so no member
    delete rewrites a 5,000-value member attribute), then leaves, then OUs from the deepest up.
    """
    holders = directory.search(filter=ad.any_of(*(ad.present(a) for a in OR_NAME_LINKS)), base=org,
                               attributes=list(OR_NAME_LINKS))
    for holder in list(holders):
        directory.modify(holder.dn, replace={a: None for a in OR_NAME_LINKS if holder.get(a)})
    found = [(o.dn, o.kind) for o in directory.search(filter=ad.MATCH_ALL, base=org, attributes=["objectClass"])]
    order = {"group": 0, "dynamic-dl": 0, "ou": 2}
    found.sort(key=lambda item: (order.get(item[1], 1), -len(ad.parse_dn(item[0]).rdns)))
    report("reset", 0, len(found))
    for index, (dn, _kind) in enumerate(found, start=1):
        try:
            directory.delete(dn)
        except ad.AccessDenied:
            unprotect_from_deletion(directory, dn)  # protected from accidental deletion by the seed
            directory.delete(dn)
        if index % 500 == 0 or index == len(found):
            report("reset", index, len(found))


def _reporting(entries: Sequence[NewEntry], phase: str, report: Progress) -> Iterator[NewEntry]:
    total = len(entries)
    step = max(1, min(500, total // 20 or 1))
    report(phase, 0, total)
    for index, entry in enumerate(entries, start=1):
        yield entry
        if index % step == 0 or index == total:
            report(phase, index, total)
