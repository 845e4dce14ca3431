"""Status sets of Address repair, each with its badge colour (templates/includes/badge.html)."""

from django.db import models

from .rules.types import Category, Rule, Severity


class ScanStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"


SCAN_STATUS_COLOURS = {ScanStatus.RUNNING: "blue", ScanStatus.COMPLETE: "green", ScanStatus.FAILED: "red"}


class FindingSeverity(models.TextChoices):
    ERROR = Severity.ERROR.value, "Error"
    WARNING = Severity.WARNING.value, "Warning"
    INFO = Severity.INFO.value, "Information"


SEVERITY_COLOURS = {FindingSeverity.ERROR: "red", FindingSeverity.WARNING: "amber", FindingSeverity.INFO: "grey"}


class FindingState(models.TextChoices):
    """A finding against the scan before: history across scans."""

    NEW = "new", "New"
    STILL_PRESENT = "still_present", "Still present"
    GONE = "gone", "Gone (fixed since the last scan)"


STATE_COLOURS = {FindingState.NEW: "blue", FindingState.STILL_PRESENT: "amber", FindingState.GONE: "green"}


class FindingRule(models.TextChoices):
    IDFIX = Rule.IDFIX.value, "IdFix rule"
    DUPLICATE = Rule.DUPLICATE.value, "Duplicate value"
    BAD_VALUE = Rule.BAD_VALUE.value, "Unreadable value"
    MAIL_NOT_PRIMARY = Rule.MAIL_NOT_PRIMARY.value, "mail is not the primary address"
    X500_ONLY = Rule.X500_ONLY.value, "proxyAddresses holds only X500"
    NO_PRIMARY = Rule.NO_PRIMARY.value, "No primary SMTP address"
    SEVERAL_PRIMARIES = Rule.SEVERAL_PRIMARIES.value, "Several primary addresses"
    CLOUD_PRIMARY_DIFFERS = Rule.CLOUD_PRIMARY_DIFFERS.value, "Cloud primary differs from ProxyCalc"
    UPN_SECONDARY = Rule.UPN_SECONDARY.value, "UPN as secondary address (by design)"
    CERTIFICATE_USER_IDS = Rule.CERTIFICATE_USER_IDS.value, "certificateUserIds"
    LARGE_ATTRIBUTE = Rule.LARGE_ATTRIBUTE.value, "Large attribute"
    CLOUD_MANAGED = Rule.CLOUD_MANAGED.value, "Cloud-managed object"
    EXPORT_ERROR = Rule.EXPORT_ERROR.value, "Export error on the sync server"
    SOFT_MATCH = Rule.SOFT_MATCH.value, "Soft match with a cloud object"


class FindingCategory(models.TextChoices):
    NONE = Category.NONE.value, "—"
    DUPLICATE_ATTRIBUTE = Category.DUPLICATE_ATTRIBUTE.value, "Duplicate Attribute"
    DATA_MISMATCH = Category.DATA_MISMATCH.value, "Data Mismatch"
    DATA_VALIDATION_FAILURE = Category.DATA_VALIDATION_FAILURE.value, "Data Validation Failure"
    LARGE_ATTRIBUTE = Category.LARGE_ATTRIBUTE.value, "Large Attribute"


OBJECT_CLASSES = [("user", "User"), ("group", "Group"), ("contact", "Contact")]


class FixStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved, applying"
    APPLIED = "applied", "Applied"
    APPLIED_WITH_SKIPS = "applied_with_skips", "Applied, some objects skipped"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    UNDONE = "undone", "Undone"


FIX_STATUS_COLOURS = {
    FixStatus.AWAITING_APPROVAL: "blue", FixStatus.APPROVED: "blue", FixStatus.APPLIED: "green",
    FixStatus.APPLIED_WITH_SKIPS: "amber", FixStatus.FAILED: "red", FixStatus.REJECTED: "grey",
    FixStatus.UNDONE: "grey",
}
