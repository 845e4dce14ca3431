"""Status sets of the writeback rename area, with their badge colours."""

from __future__ import annotations

from django.db import models


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"


PLAN_STATUS_COLOURS = {
    PlanStatus.DRAFT: "grey", PlanStatus.AWAITING_APPROVAL: "amber", PlanStatus.APPROVED: "green",
    PlanStatus.REJECTED: "red", PlanStatus.SUPERSEDED: "grey",
}


class RowSection(models.TextChoices):
    PLANNED = "planned", "Renamed by the switch"
    NOT_JOINED = "not_joined", "In the OU, no cloud group (left alone)"
    WRITEBACK_DISABLED = "writeback_disabled", "Cloud group no longer enabled for writeback"
    OUTSIDE_OU = "outside_ou", "Written back, outside the writeback OU"
    NOT_WRITTEN_BACK = "not_written_back", "In the OU, not a written-back group"


SECTION_COLOURS = {
    RowSection.PLANNED: "green", RowSection.NOT_JOINED: "amber", RowSection.WRITEBACK_DISABLED: "amber",
    RowSection.OUTSIDE_OU: "red", RowSection.NOT_WRITTEN_BACK: "grey",
}

# risk key -> what a reader must check
RISKS: dict[str, str] = {
    "nested": "member of on-premises groups (AD keeps the link through a rename, not through a deletion)",
    "managed_by": "named in managedBy of other objects",
    "delivery_restrictions": "named in delivery restrictions of other recipients (authOrig, dLMemSubmitPerms...)",
    "mail_enabled": "mail-enabled: mail flow and address book point at it",
    "acl": "a trustee in the permissions of objects the portal read",
    "collision": "its planned DN meets another object's name in the OU: the rename would fail",
    "undocumented": "its name hits a case the product does not document: check the result by hand",
    "manual": "uses invisible to the directory (file shares, GPO security filtering, scripts naming the group): "
              "check by hand",
}


class CloudSyncVerdict(models.TextChoices):
    READY = "ready", "Cloud Sync can take it over"
    PREPARE = "prepare", "Cloud Sync can take it over after preparation"
    STAYS = "stays", "Must stay on Connect Sync or change"


CLOUD_SYNC_COLOURS = {CloudSyncVerdict.READY: "green", CloudSyncVerdict.PREPARE: "amber",
                      CloudSyncVerdict.STAYS: "red"}


class VerificationOutcome(models.TextChoices):
    RENAMED = "renamed", "Renamed as planned"
    UNCHANGED = "unchanged", "Not renamed yet"
    MISMATCHED = "mismatched", "Renamed, but not as planned"
    MISSING = "missing", "Missing (deleted!)"
    UNEXPECTED = "unexpected", "Unexpected (not in the plan)"


VERIFICATION_COLOURS = {
    VerificationOutcome.RENAMED: "green", VerificationOutcome.UNCHANGED: "amber",
    VerificationOutcome.MISMATCHED: "red", VerificationOutcome.MISSING: "red", VerificationOutcome.UNEXPECTED: "amber",
}
