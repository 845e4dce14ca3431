"""The DL migration area: the inventory of synced lists, migrations with their backups, and the
settings an Administrator controls."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from .choices import (
    DONE_MIGRATION_STATUSES,
    OPEN_MIGRATION_STATUSES,
    BackupKind,
    BatchListOutcome,
    BatchListRun,
    BatchMethod,
    BatchStatus,
    ListKind,
    ListState,
    MigrationMethod,
    MigrationStatus,
)


class DistributionList(models.Model):
    """One mail-enabled group of on-premises AD as the last inventory saw it, with its cloud twin."""

    guid = models.UUIDField(unique=True, help_text="objectGUID on-premises")
    dn = models.CharField(max_length=1024)
    name = models.CharField(max_length=256, db_index=True)
    display_name = models.CharField(max_length=256, blank=True)
    mail = models.CharField(max_length=320, db_index=True, blank=True)
    alias = models.CharField(max_length=256, blank=True)
    ou = models.CharField(max_length=1024, db_index=True, help_text="The container it sits in")
    kind = models.CharField(max_length=20, choices=ListKind.choices, default=ListKind.DISTRIBUTION)
    state = models.CharField(max_length=20, choices=ListState.choices, default=ListState.SYNCED, db_index=True)
    member_count = models.PositiveIntegerField(default=0)
    child_lists = models.JSONField(default=list, blank=True, help_text="DNs of mail-enabled child groups")
    parent_lists = models.JSONField(default=list, blank=True, help_text="DNs of groups it is a member of")
    dependencies = models.JSONField(default=dict, blank=True, help_text="back-link attribute → DNs naming it")
    # Indexed for the inventory's "with dependencies" count, which otherwise reads every list (bench/load).
    dependency_count = models.PositiveIntegerField(default=0, db_index=True)
    cloud_object_id = models.CharField(max_length=64, blank=True)
    cloud_type = models.CharField(max_length=64, blank=True)
    cloud_dir_synced = models.BooleanField(null=True)
    inventoried_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.mail or self.name

    @property
    def is_nested(self) -> bool:
        return bool(self.child_lists or self.parent_lists)


class MigrationSettings(models.Model):
    """One row: what an Administrator decides for every migration."""

    require_approval_for_single = models.BooleanField(
        default=False, help_text="A single migration waits for an Approver's sign-off, as batches do.")
    default_hybrid_mail_flow = models.BooleanField(default=True)
    default_keep_original = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Turning four eyes off is itself a four-eyes change: one Administrator asks, another confirms.
    four_eyes_off_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                                   on_delete=models.SET_NULL, related_name="+")
    four_eyes_off_requested_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def current(cls) -> MigrationSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Migration(models.Model):
    """One list moved (or to be moved) to Exchange Online; its job does the work, this row keeps the outcome."""

    mail = models.CharField(max_length=320, db_index=True, help_text="The address it was requested by")
    distribution_list = models.ForeignKey(DistributionList, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="migrations")
    group_guid = models.UUIDField(null=True, blank=True, db_index=True)
    group_name = models.CharField(max_length=256, blank=True)
    options = models.JSONField(default=dict, blank=True)
    method = models.CharField(max_length=20, choices=MigrationMethod.choices, default=MigrationMethod.RECREATE,
                              help_text="Recreate as a cloud list, or hand its source of authority to the cloud")
    status = models.CharField(max_length=20, choices=MigrationStatus.choices, default=MigrationStatus.QUEUED,
                              db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="requested_migrations")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="approved_migrations",
                                    help_text="Who approved or rejected the request (never the requester)")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True, help_text="The approver's note or reason")
    approval_expires_at = models.DateTimeField(null=True, blank=True,
                                               help_text="The run refuses to start on this approval after it")
    preflight = models.JSONField(default=dict, blank=True, help_text="The preflight report it was requested on")
    plan_hash = models.CharField(max_length=64, blank=True,
                                 help_text="Hash of the preflight's plan: what was asked and signed")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    original_dn = models.CharField(max_length=1024, blank=True)
    cloud_group_id = models.CharField(max_length=64, blank=True, help_text="ExternalDirectoryObjectId of the new list")
    contact_dn = models.CharField(max_length=1024, blank=True)
    dynamic_list_dn = models.CharField(max_length=1024, blank=True)
    post_create_errors = models.JSONField(default=list, blank=True)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The database itself refuses self-approval, whatever code path writes the row.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(requested_by__isnull=True)
                | ~Q(approved_by=F("requested_by")),
                name="migration_not_decided_by_requester"),
            # One open migration per list, even for two requests racing each other.
            models.UniqueConstraint(Lower("mail"), condition=Q(status__in=OPEN_MIGRATION_STATUSES),
                                    name="one_open_migration_per_list"),
        ]
        permissions = [
            ("run_preflight", "Run DL preflights and the inventory"),
            ("migrate_dl", "Start a single DL migration"),
            ("approve_migration", "Approve a migration requested by someone else"),
            ("change_migrated_dl", "Enable hybrid mail flow or change the address of a migrated list"),
            ("restore_dl", "Restore a migrated list on-premises from its backup"),
            ("manage_migration_settings", "Change the migration settings"),
        ]

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("migrations_app:migration", args=[self.pk])

    def __str__(self) -> str:
        return f"Migration #{self.pk} {self.mail}"

    @property
    def is_done(self) -> bool:
        return self.status in DONE_MIGRATION_STATUSES


class MigrationBackup(models.Model):
    """What a migration saved before it changed anything: enough to rebuild the list on-premises."""

    migration = models.ForeignKey(Migration, on_delete=models.CASCADE, related_name="backups")
    kind = models.CharField(max_length=32, choices=BackupKind.choices)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["migration", "kind"]
        constraints = [models.UniqueConstraint(fields=["migration", "kind"], name="one_backup_per_kind")]


class MigrationBatch(models.Model):
    """Many lists moved together: built by Helpdesk, signed off by an Approver, run in a window."""

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=BatchStatus.choices, default=BatchStatus.DRAFT, db_index=True)
    options = models.JSONField(default=dict, blank=True, help_text="MigrationOptions for every list of the batch")
    method = models.CharField(max_length=20, choices=BatchMethod.choices, default=BatchMethod.RECREATE,
                              help_text="The method of a list that has none of its own: the one its preflight "
                                        "recommends, or one for every list")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="requested_batches")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="decided_batches",
                                    help_text="Who approved or rejected it (never the requester)")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    plan_hash = models.CharField(max_length=64, blank=True,
                                 help_text="Hash over every list's plan hash: what was submitted and signed")
    preflight_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    preflight_summary = models.JSONField(default=dict, blank=True)
    window_start = models.DateTimeField(null=True, blank=True, help_text="Empty: as soon as it is scheduled")
    window_end = models.DateTimeField(null=True, blank=True, help_text="No new list starts after it")
    paused = models.BooleanField(default=False)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                            help_text="The job that runs the batch")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(requested_by__isnull=True)
                | ~Q(approved_by=F("requested_by")),
                name="batch_not_decided_by_requester"),
        ]

    def __str__(self) -> str:
        return f"Batch #{self.pk} {self.name}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("migrations_app:batch", args=[self.pk])


class BatchList(models.Model):
    """One list of a batch, with what its preflight said and the plan hash an approval pins."""

    batch = models.ForeignKey(MigrationBatch, on_delete=models.CASCADE, related_name="lists")
    mail = models.CharField(max_length=320)
    distribution_list = models.ForeignKey(DistributionList, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    method = models.CharField(max_length=20, choices=MigrationMethod.choices, blank=True,
                              help_text="Chosen for this list by a person; empty: the batch's rule decides")
    outcome = models.CharField(max_length=20, choices=BatchListOutcome.choices, default=BatchListOutcome.UNCHECKED)
    preflight = models.JSONField(default=dict, blank=True, help_text="This list's preflight report in the batch's")
    plan_hash = models.CharField(max_length=64, blank=True)
    migration = models.ForeignKey(Migration, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_state = models.CharField(max_length=20, choices=BatchListRun.choices, default=BatchListRun.PENDING)
    run_note = models.CharField(max_length=500, blank=True, help_text="Why it waits, was blocked or failed")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["batch", "mail"]
        constraints = [models.UniqueConstraint("batch", Lower("mail"), name="one_address_per_batch")]

    def __str__(self) -> str:
        return self.mail


class BatchSyncRound(models.Model):
    """One delta sync a running batch starts for many lists at once: the lists of a wave that moved
    their group out of the sync scope wait here (their jobs parked, workers free) and the lists that
    finished ask here for their routing contact to be published; one cycle then serves them all."""

    class Status(models.TextChoices):
        OPEN = "open", "Gathering lists"
        STARTING = "starting", "Starting the sync"
        STARTED = "started", "Sync started"
        FAILED = "failed", "Sync could not be started"

    batch = models.ForeignKey(MigrationBatch, on_delete=models.CASCADE, related_name="sync_rounds")
    number = models.PositiveIntegerField(help_text="1, 2, … within the batch")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    waiting = models.JSONField(default=list, blank=True,
                               help_text="'<job id>:<step>' of each parked list job the sync serves")
    deferred = models.JSONField(default=list, blank=True,
                                help_text="Migration ids whose final changes the sync publishes")
    opened_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["batch", "number"]
        constraints = [models.UniqueConstraint(fields=["batch", "number"], name="one_sync_round_number_per_batch")]

    def __str__(self) -> str:
        return f"Batch #{self.batch_id} delta sync {self.number}"


class Notification(models.Model):
    """A line in someone's portal inbox: a batch waits for them, or theirs moved on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text
