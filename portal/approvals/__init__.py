"""What every signed-off change in the portal shares: the approve / reject forms, how long an approval stays
valid, the hash that pins the plan an approver signed, and the sign-off itself (signoff.py: four eyes, the
decision stored and audited, refusals audited), described once per area by a SignOff. The approver queue
gathers every area's waiting requests (queue.py)."""

from .forms import ApproveForm, PinnedApproveForm, RejectForm
from .hashing import plan_hash
from .validity import ApprovalRefused, check_approval_validity

__all__ = ["ApprovalRefused", "ApproveForm", "PinnedApproveForm", "RejectForm", "check_approval_validity", "plan_hash"]
