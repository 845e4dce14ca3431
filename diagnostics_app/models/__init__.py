"""The diagnostics app's models, one module per area (the app is one Django app; its areas are sub-packages)."""

from .addresses import AddressFinding, AddressFix, AddressScan
from .mfa import MfaSnapshot, MfaUserRow

__all__ = ["AddressFinding", "AddressFix", "AddressScan", "MfaSnapshot", "MfaUserRow"]
