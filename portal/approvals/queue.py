"""Everything an Approver signs, in one queue: the Pending approvals page and the navigation's count read
these same lists, so a kind of request added here shows in both (they drifted apart when each kept its own).

Each area keeps its selector (its four-eyes rule: never one's own request, and its own permission); this
module only gathers them. Imported lazily: the areas import portal, not the other way round at load time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApprovalQueue:
    migrations: Any
    batches: Any
    address_fixes: Any
    writeback_plans: Any
    wave_groups: Any

    def lists(self) -> tuple[Any, ...]:
        return (self.migrations, self.batches, self.address_fixes, self.writeback_plans, self.wave_groups)

    def count(self) -> int:
        return sum(len(q) if isinstance(q, list) else q.count() for q in self.lists())


def approval_queue(*, user) -> ApprovalQueue:
    """The requests someone else made that this user may sign, per kind, oldest first."""
    from diagnostics_app.addresses.selectors import fixes_awaiting_approval
    from diagnostics_app.mfa.wave_selectors import wave_groups_awaiting_approval
    from diagnostics_app.writeback.selectors import awaiting_approval as writeback_awaiting
    from migrations_app.batch_selectors import batches_awaiting_approval
    from migrations_app.selectors import migrations_awaiting_approval

    can_dl = user.has_perm("migrations_app.approve_migration")
    empty: list = []
    return ApprovalQueue(
        migrations=migrations_awaiting_approval(user=user) if can_dl else empty,
        batches=batches_awaiting_approval(user=user) if can_dl else empty,
        address_fixes=fixes_awaiting_approval(user=user),
        writeback_plans=(writeback_awaiting().exclude(requested_by=user)
                         if user.has_perm("diagnostics_app.approve_writeback_plan") else empty),
        wave_groups=wave_groups_awaiting_approval(user=user))
