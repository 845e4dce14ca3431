"""Roll-out waves as groups: a readiness result's waves split to a maximum size, the hash an approval pins,
and what a run must change in the tenant so each wave has exactly one security group with exactly its users.
Pure functions: the services store and approve, the job reads the tenant and calls the connector."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from portal.approvals import plan_hash as approval_hash

DEFAULT_MAX = 500
MAX_WAVES = 200
GROUP_PREFIX = "MFA wave"


@dataclass(frozen=True)
class WavePart:
    """One wave as a group will hold it: a bucket (department or group), or one slice of a large bucket."""

    number: int
    bucket: str
    part: int
    parts: int
    user_ids: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.bucket if self.parts == 1 else f"{self.bucket} ({self.part}/{self.parts})"

    @property
    def group_name(self) -> str:
        return f"{GROUP_PREFIX} {self.number:02d} - {self.label}"[:256]

    @property
    def mail_nickname(self) -> str:
        return mail_nickname(self.number, self.label)

    def as_dict(self) -> dict:
        return {"number": self.number, "bucket": self.bucket, "part": self.part, "parts": self.parts,
                "group_name": self.group_name, "mail_nickname": self.mail_nickname, "user_ids": list(self.user_ids)}


def mail_nickname(number: int, label: str) -> str:
    """Graph accepts ASCII letters, digits and . _ - in mailNickname (at most 64)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "wave"
    return f"mfa-wave-{number:02d}-{slug}"[:64].rstrip("-")


def split_waves(buckets: Sequence[tuple[str, Sequence[str]]], max_size: int) -> list[WavePart]:
    """Each bucket (in the order given: readiest first) becomes ceil(n/max) waves of near-equal size, members
    in the order given; empty buckets give none. A user appears in one wave only (the first bucket naming them)."""
    if max_size < 1:
        raise ValueError("A wave holds at least one user.")
    seen: set[str] = set()
    out: list[WavePart] = []
    for bucket, ids in buckets:
        members = [i for i in dict.fromkeys(ids) if i not in seen]
        seen.update(members)
        if not members:
            continue
        parts = -(-len(members) // max_size)
        base, extra = divmod(len(members), parts)
        start = 0
        for k in range(parts):
            size = base + (1 if k < extra else 0)
            out.append(WavePart(number=len(out) + 1, bucket=bucket, part=k + 1, parts=parts,
                                user_ids=tuple(members[start:start + size])))
            start += size
    return out


def plan_hash(waves: Iterable[Mapping]) -> str:
    """What the approval pins: every wave's group name and its exact membership (order-free)."""
    return approval_hash([{"group_name": w["group_name"], "mail_nickname": w["mail_nickname"],
                           "user_ids": sorted(str(u).lower() for u in w["user_ids"])} for w in waves])


@dataclass(frozen=True)
class GroupPlan:
    """One wave's group change: create it (no id yet), add these, remove those; nothing when already right."""

    group_name: str
    group_id: str | None
    add: tuple[str, ...]
    remove: tuple[str, ...]

    @property
    def create(self) -> bool:
        return self.group_id is None

    @property
    def nothing_to_do(self) -> bool:
        return not self.create and not self.add and not self.remove


def group_plan(*, group_name: str, group_id: str | None, wanted: Iterable[str], current: Iterable[str]) -> GroupPlan:
    """The difference between the wave's users and the group's members (ids compared case-insensitively)."""
    have = {str(c).lower(): str(c) for c in current}
    want = {str(w).lower(): str(w) for w in wanted}
    return GroupPlan(group_name=group_name, group_id=group_id,
                     add=tuple(want[k] for k in sorted(want.keys() - have.keys())),
                     remove=tuple(have[k] for k in sorted(have.keys() - want.keys())))
