"""The diagnostics app's models, one module per area (the app is one Django app; its areas are sub-packages)."""

from .addresses import AddressFinding, AddressScan
from .mfa import MfaSnapshot, MfaUserRow

__all__ = ["AddressFinding", "AddressScan", "MfaSnapshot", "MfaUserRow"]
