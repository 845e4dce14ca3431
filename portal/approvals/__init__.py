"""What every signed-off change in the portal shares: the approve / reject forms, how long an approval stays
valid, and the hash that pins the plan an approver signed. Used by DL migrations, DL batches and Address
repair fixes; each area keeps its own four-eyes checks, statuses and audit actions."""

from .forms import ApproveForm, RejectForm
from .hashing import plan_hash
from .validity import ApprovalRefused, check_approval_validity

__all__ = ["ApprovalRefused", "ApproveForm", "RejectForm", "check_approval_validity", "plan_hash"]
