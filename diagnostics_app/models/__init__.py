"""The diagnostics app's models, one module per area (the app is one Django app; its areas are sub-packages)."""

from .addresses import AddressFinding, AddressFix, AddressScan
from .mfa import MfaSnapshot, MfaUserRow
from .mfa_audit import MfaAuditEvent, MfaAuditJournal
from .mfa_policies import MfaPolicy
from .mfa_waves import MfaWaveGroups
from .writeback import WritebackPlan, WritebackPlanRow, WritebackRunbookStep, WritebackVerification

__all__ = ["AddressFinding", "AddressFix", "AddressScan", "MfaAuditEvent", "MfaAuditJournal", "MfaPolicy",
           "MfaSnapshot", "MfaUserRow", "MfaWaveGroups", "WritebackPlan", "WritebackPlanRow", "WritebackRunbookStep",
           "WritebackVerification"]
