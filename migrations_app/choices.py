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


class MigrationMethod(models.TextChoices):
    """How a list reaches the cloud: recreated as a cloud-only list (the field notes' method), or its
    source of authority handed to the cloud in place (``onPremisesSyncBehavior``, 2025)."""

    RECREATE = "recreate", "Recreate"
    IN_PLACE = "in_place", "In place"


MIGRATION_METHOD_COLOURS = {MigrationMethod.RECREATE: "grey", MigrationMethod.IN_PLACE: "blue"}


class BatchMethod(models.TextChoices):
    """A batch's rule for the method of its lists; each list may still be given its own (``BatchList.method``)."""

    RECOMMENDED = "recommended", "The recommended method for each list"
    RECREATE = "recreate", "Recreate every list"
    IN_PLACE = "in_place", "In place for every list"


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


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_WARNINGS = "completed_warnings", "Completed with warnings"
    COMPLETED_WITH_ERRORS = "completed_errors", "Completed with errors"
    CANCELLED = "cancelled", "Cancelled"


BATCH_STATUS_COLOURS = {
    BatchStatus.DRAFT: "grey",
    BatchStatus.SUBMITTED: "amber",
    BatchStatus.APPROVED: "green",
    BatchStatus.REJECTED: "dark",
    BatchStatus.SCHEDULED: "blue",
    BatchStatus.RUNNING: "blue",
    BatchStatus.COMPLETED: "green",
    BatchStatus.COMPLETED_WITH_WARNINGS: "amber",
    BatchStatus.COMPLETED_WITH_ERRORS: "red",
    BatchStatus.CANCELLED: "dark",
}

# Every legal move of a batch; anything else is refused by the one transition service. Approved and
# Scheduled go back to Submitted when the batch changes after its sign-off.
BATCH_TRANSITIONS: dict[str, frozenset[str]] = {
    BatchStatus.DRAFT: frozenset({BatchStatus.SUBMITTED, BatchStatus.CANCELLED}),
    BatchStatus.SUBMITTED: frozenset({BatchStatus.APPROVED, BatchStatus.REJECTED, BatchStatus.DRAFT,
                                      BatchStatus.CANCELLED}),
    BatchStatus.APPROVED: frozenset({BatchStatus.SCHEDULED, BatchStatus.SUBMITTED, BatchStatus.CANCELLED}),
    BatchStatus.REJECTED: frozenset({BatchStatus.DRAFT}),
    BatchStatus.SCHEDULED: frozenset({BatchStatus.RUNNING, BatchStatus.SUBMITTED, BatchStatus.CANCELLED}),
    BatchStatus.RUNNING: frozenset({BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_WARNINGS,
                                    BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.CANCELLED}),
    BatchStatus.COMPLETED: frozenset(),
    BatchStatus.COMPLETED_WITH_WARNINGS: frozenset(),
    BatchStatus.COMPLETED_WITH_ERRORS: frozenset(),
    BatchStatus.CANCELLED: frozenset(),
}
# A list in a batch in one of these may not be put in another batch.
OPEN_BATCH_STATUSES = (BatchStatus.DRAFT, BatchStatus.SUBMITTED, BatchStatus.APPROVED, BatchStatus.SCHEDULED,
                       BatchStatus.RUNNING)
# The lists of a batch in one of these can be changed (Approved and Scheduled go back to Submitted).
EDITABLE_BATCH_STATUSES = (BatchStatus.DRAFT, BatchStatus.SUBMITTED, BatchStatus.APPROVED, BatchStatus.SCHEDULED)


class BatchListOutcome(models.TextChoices):
    """What the batch preflight said of one list."""

    UNCHECKED = "unchecked", "Not checked yet"
    READY = "ready", "Ready"
    WARNINGS = "warnings", "Ready, with warnings"
    BLOCKED = "blocked", "Blocked"


BATCH_LIST_OUTCOME_COLOURS = {
    BatchListOutcome.UNCHECKED: "grey",
    BatchListOutcome.READY: "green",
    BatchListOutcome.WARNINGS: "amber",
    BatchListOutcome.BLOCKED: "red",
}


class BatchListRun(models.TextChoices):
    """Where one list of a running batch stands."""

    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    MIGRATED = "migrated", "Migrated"
    WARNINGS = "warnings", "Migrated with warnings"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"
    NOT_STARTED = "not_started", "Not started"


BATCH_LIST_RUN_COLOURS = {
    BatchListRun.PENDING: "grey",
    BatchListRun.RUNNING: "blue",
    BatchListRun.MIGRATED: "green",
    BatchListRun.WARNINGS: "amber",
    BatchListRun.FAILED: "red",
    BatchListRun.BLOCKED: "red",
    BatchListRun.NOT_STARTED: "dark",
}
# A list in one of these will not move any more in this batch.
FINAL_LIST_RUNS = (BatchListRun.MIGRATED, BatchListRun.WARNINGS, BatchListRun.FAILED, BatchListRun.BLOCKED,
                   BatchListRun.NOT_STARTED)
