"""Status sets of the diagnostics area, each with its badge colour (templates/includes/badge.html)."""

from django.db import models


class MfaClass(models.TextChoices):
    """What a user can do when an MFA policy asks for a second factor (diagnostics_app/mfa/classify.py)."""

    MFA_CAPABLE = "mfa_capable", "MFA capable"
    PASSWORDLESS = "passwordless", "Passwordless capable"
    SMS_VOICE_ONLY = "sms_voice_only", "SMS or voice only"
    NOT_CAPABLE_POLICY = "not_capable_policy", "Registered, not capable by policy"
    NOT_USABLE = "not_usable", "Registered but not usable"
    ADMIN_NO_STRONG = "admin_no_strong", "Administrator without a strong method"
    NOT_REGISTERED = "not_registered", "Not registered"
    NOT_EVALUATED = "not_evaluated", "Not evaluated"


MFA_CLASS_COLOURS = {
    MfaClass.MFA_CAPABLE: "green",
    MfaClass.PASSWORDLESS: "green",
    MfaClass.SMS_VOICE_ONLY: "amber",
    MfaClass.NOT_CAPABLE_POLICY: "amber",
    MfaClass.NOT_USABLE: "red",
    MfaClass.ADMIN_NO_STRONG: "red",
    MfaClass.NOT_REGISTERED: "red",
    MfaClass.NOT_EVALUATED: "grey",
}

# Fill colours of the charts (SVG); each chart also prints the label and the number beside it.
MFA_CLASS_FILLS = {
    MfaClass.MFA_CAPABLE: "#1a7f37",
    MfaClass.PASSWORDLESS: "#0550ae",
    MfaClass.SMS_VOICE_ONLY: "#bf8700",
    MfaClass.NOT_CAPABLE_POLICY: "#e16f24",
    MfaClass.NOT_USABLE: "#a40e26",
    MfaClass.ADMIN_NO_STRONG: "#6e1020",
    MfaClass.NOT_REGISTERED: "#cf222e",
    MfaClass.NOT_EVALUATED: "#8c959f",
}


class MethodFamily(models.TextChoices):
    """Authentication methods grouped the way an MFA policy sees them (report names and method types map here)."""

    AUTHENTICATOR = "authenticator", "Microsoft Authenticator (push)"
    AUTHENTICATOR_PASSWORDLESS = "authenticator_passwordless", "Authenticator passwordless"
    SOFTWARE_OATH = "software_oath", "Software OATH code"
    HARDWARE_OATH = "hardware_oath", "Hardware OATH token"
    FIDO2 = "fido2", "FIDO2 / passkey"
    WINDOWS_HELLO = "windows_hello", "Windows Hello for Business"
    PLATFORM = "platform_credential", "Platform credential"
    PHONE = "phone", "Phone (SMS / voice)"
    EXTERNAL = "external", "External method"
    EMAIL = "email", "Email (SSPR only)"
    TAP = "tap", "Temporary Access Pass"
    SECURITY_QUESTION = "security_question", "Security questions"
    APP_PASSWORD = "app_password", "App password"
    UNKNOWN = "unknown", "Unknown method type"


class SnapshotStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    FALLBACK = "fallback", "Partial (no premium licence)"
    FAILED = "failed", "Failed"


SNAPSHOT_STATUS_COLOURS = {
    SnapshotStatus.COMPLETE: "green",
    SnapshotStatus.FALLBACK: "amber",
    SnapshotStatus.FAILED: "red",
}


class PolicyOutcome(models.TextChoices):
    """What the tenant's enabled conditional access policies (or security defaults) do to a user (mfa/policies.py)."""

    ABLE = "covered_able", "Covered and able"
    INTERRUPTED = "covered_interrupted", "Covered, will be interrupted"
    NOT_COVERED = "not_covered", "Not covered"
    NOT_EVALUATED = "not_evaluated", "Not evaluated"


# The report shows two "interrupted" figures over the same accounts (enabled ones: disabled accounts do not sign
# in); each is shown with its explanation so that the two are never read as one.
INTERRUPTED_IF_REQUIRED_HELP = ("Would be interrupted if a policy required MFA of every enabled account: cannot "
                                "answer any MFA prompt (no usable method), whatever conditional access does today.")
INTERRUPTED_TODAY_HELP = ("Interrupted by today's policies: an enabled conditional access policy (or security "
                          "defaults) already asks for MFA and the account cannot meet that policy's demand.")

POLICY_OUTCOME_COLOURS = {
    PolicyOutcome.ABLE: "green",
    PolicyOutcome.INTERRUPTED: "red",
    PolicyOutcome.NOT_COVERED: "amber",
    PolicyOutcome.NOT_EVALUATED: "grey",
}


class PolicyState(models.TextChoices):
    """A conditional access policy's state as Graph names it; only ``enabled`` enforces."""

    ENABLED = "enabled", "Enabled"
    REPORT_ONLY = "enabledForReportingButNotEnforced", "Report-only"
    DISABLED = "disabled", "Disabled"


POLICY_STATE_COLOURS = {
    PolicyState.ENABLED: "green",
    PolicyState.REPORT_ONLY: "blue",
    PolicyState.DISABLED: "grey",
}


class WaveGroupsStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved, writing the groups"
    DONE = "done", "Groups written"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


WAVE_GROUPS_STATUS_COLOURS = {
    WaveGroupsStatus.AWAITING_APPROVAL: "blue", WaveGroupsStatus.APPROVED: "blue", WaveGroupsStatus.DONE: "green",
    WaveGroupsStatus.FAILED: "red", WaveGroupsStatus.REJECTED: "grey",
}
