"""The diagnostics app's models, one module per area (the app is one Django app; its areas are sub-packages)."""

from .mfa import MfaSnapshot, MfaUserRow
from .mfa_policies import MfaPolicy

__all__ = ["MfaPolicy", "MfaSnapshot", "MfaUserRow"]
