"""Status sets of the DL migration area, each with the badge colour every page uses for it."""

from django.db import models


class MigrationStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    MIGRATED = "migrated", "Migrated"
    MIGRATED_WITH_WARNINGS = "migrated_warnings", "Migrated with warnings"
    ROLLED_BACK = "rolled_back", "Failed, rolled back"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    RESTORED = "restored", "Restored on-premises"
    CANCELLED = "cancelled", "Cancelled"


MIGRATION_STATUS_COLOURS = {
    MigrationStatus.AWAITING_APPROVAL: "grey",
    MigrationStatus.QUEUED: "grey",
    MigrationStatus.RUNNING: "blue",
    MigrationStatus.MIGRATED: "green",
    MigrationStatus.MIGRATED_WITH_WARNINGS: "amber",
    MigrationStatus.ROLLED_BACK: "red",
    MigrationStatus.FAILED: "red",
    MigrationStatus.REJECTED: "dark",
    MigrationStatus.RESTORED: "dark",
    MigrationStatus.CANCELLED: "dark",
}

# A list in one of these is being (or has been) moved to the cloud: a second migration is refused.
OPEN_MIGRATION_STATUSES = (MigrationStatus.AWAITING_APPROVAL, MigrationStatus.QUEUED, MigrationStatus.RUNNING)
DONE_MIGRATION_STATUSES = (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS)


class CheckOutcome(models.TextChoices):
    PASS = "pass", "Pass"
    WARNING = "warning", "Warning"
    FAILURE = "failure", "Failure"


CHECK_OUTCOME_COLOURS = {CheckOutcome.PASS: "green", CheckOutcome.WARNING: "amber", CheckOutcome.FAILURE: "red"}


class ListKind(models.TextChoices):
    DISTRIBUTION = "distribution", "Distribution list"
    SECURITY = "security", "Mail-enabled security group"
    ROOM_LIST = "room_list", "Room list"


LIST_KIND_COLOURS = {ListKind.DISTRIBUTION: "blue", ListKind.SECURITY: "amber", ListKind.ROOM_LIST: "grey"}


class ListState(models.TextChoices):
    SYNCED = "synced", "Synced"
    MIGRATED = "migrated", "Migrated"
    NOT_IN_CLOUD = "not_in_cloud", "Not in the cloud"
    OUT_OF_SCOPE = "out_of_scope", "Outside the sync scope"


LIST_STATE_COLOURS = {
    ListState.SYNCED: "blue",
    ListState.MIGRATED: "green",
    ListState.NOT_IN_CLOUD: "amber",
    ListState.OUT_OF_SCOPE: "grey",
}


class BackupKind(models.TextChoices):
    ONPREM_GROUP = "onprem_group", "On-premises group (every attribute)"
    ONPREM_MEMBERS = "onprem_members", "On-premises members"
    ONPREM_DEPENDENCIES = "onprem_dependencies", "On-premises dependencies"
    CLOUD_GROUP = "cloud_group", "Cloud list settings"
    CLOUD_MEMBERS = "cloud_members", "Cloud membership"
    CLOUD_DEPENDENCIES = "cloud_dependencies", "Cloud dependencies"
