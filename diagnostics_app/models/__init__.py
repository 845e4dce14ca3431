"""The diagnostics app's models, one module per area (the app is one Django app; its areas are sub-packages)."""

from .mfa import MfaSnapshot, MfaUserRow
from .writeback import WritebackPlan, WritebackPlanRow, WritebackRunbookStep, WritebackVerification

__all__ = ["MfaSnapshot", "MfaUserRow", "WritebackPlan", "WritebackPlanRow", "WritebackRunbookStep",
           "WritebackVerification"]
