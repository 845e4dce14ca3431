"""Writes of the DL migration area: preflights, migrations (single, with optional sign-off), the
inventory, work on migrated lists and restores. Views, the command line and batches call these.

Each ``do_*`` starts a job (enqueued when the transaction commits) or changes a row; each ``check_*``
validates first and raises :class:`MigrationRefused` with a sentence for the person asking.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.approvals.signoff import SignOff, do_decline, do_sign
from portal.audit.services import record
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from .choices import DONE_MIGRATION_STATUSES, OPEN_MIGRATION_STATUSES, MigrationMethod, MigrationStatus
from .models import Migration, MigrationSettings
from .options import InvalidOptions, MigrationOptions

PREFLIGHT_VALID_FOR = timedelta(hours=24)
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
                      r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_ALIAS = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$")

KIND_PREFLIGHT = "dl_preflight"
KIND_MIGRATE = "dl_migrate"
KIND_INVENTORY = "dl_inventory"
KIND_HYBRID = "dl_enable_hybrid_mail_flow"
KIND_ADDRESS = "dl_update_address"
KIND_RESTORE = "dl_restore"
KIND_TAKE_BACK_PREVIEW = "dl_take_back_preview"


class MigrationRefused(Exception):
    """The request cannot go ahead; the message says why and what to do. Nothing was queued."""


def check_address(value: str) -> str:
    text = (value or "").strip()
    if not text or len(text) > 320 or not _ADDRESS.match(text):
        raise MigrationRefused(f"{value!r} is not an e-mail address. Give the list's primary SMTP address, "
                               "e.g. sales-team@contoso.com.")
    return text


def check_alias(value: str) -> str:
    text = (value or "").strip()
    if not text or len(text) > 64 or not _ALIAS.match(text):
        raise MigrationRefused(f"{value!r} is not a valid alias (letters, digits and ! # $ % & ' * + - / = ? ^ _ ` "
                               "{ | } ~, dots between them, at most 64).")
    return text


def check_options(data: dict[str, Any] | None) -> MigrationOptions:
    try:
        return MigrationOptions.from_dict(data)
    except (InvalidOptions, TypeError) as exc:
        raise MigrationRefused(f"Options: {exc}") from None


def check_no_open_migration(*, mail: str) -> None:
    existing = Migration.objects.filter(mail__iexact=mail, status__in=(*OPEN_MIGRATION_STATUSES,
                                                                        *DONE_MIGRATION_STATUSES)).first()
    if existing is not None:
        raise MigrationRefused(f"{mail} already has migration #{existing.pk} ({existing.get_status_display().lower()})"
                               ": open it instead of starting another.")


def do_start_preflight(*, mail: str, options: dict[str, Any] | None = None, user, request=None,
                       enqueue: bool = True) -> Job:
    address = check_address(mail)
    opts = check_options(options)
    return do_start_job(kind=KIND_PREFLIGHT, user=user, params={"mail": address, "options": opts.to_dict()},
                        target=address, request=request, enqueue=enqueue)


def latest_preflight(*, mail: str, options: MigrationOptions) -> Job | None:
    """The newest finished preflight of this address with these options, if still fresh."""
    since = timezone.now() - PREFLIGHT_VALID_FOR
    for job in Job.objects.filter(kind=KIND_PREFLIGHT, target__iexact=mail, finished_at__gte=since).order_by(
            "-finished_at")[:20]:
        if job.params.get("options") == options.to_dict():
            return job
    return None


def check_can_migrate(*, mail: str, options: MigrationOptions, user) -> dict[str, Any]:
    """The passed preflight's report (with its job's id, so an approver can open it)."""
    """A fresh preflight passed for this address and options, and nothing else is migrating it."""
    if not user.has_perm("migrations_app.migrate_dl"):
        raise PermissionDenied("Starting a migration needs the Helpdesk or Administrator role.")
    check_no_open_migration(mail=mail)
    job = latest_preflight(mail=mail, options=options)
    if job is None:
        raise MigrationRefused(f"Run a preflight of {mail} with these options first (a preflight is valid for "
                               f"{PREFLIGHT_VALID_FOR.seconds // 3600 or 24} hours).")
    report = job.result or {}
    if job.status not in (JobStatus.SUCCEEDED, JobStatus.WARNINGS) or not report.get("ok"):
        raise MigrationRefused(f"The last preflight of {mail} (job #{job.pk}) did not pass: "
                               f"{report.get('summary') or job.summary}")
    return {**report, "job_id": job.pk}


@transaction.atomic
def do_request_migration(*, mail: str, options: dict[str, Any] | None = None, user, request=None,
                         enqueue: bool = True) -> Migration:
    """Create the migration; queue its job now, or wait for an Approver when the settings say so."""
    address = check_address(mail)
    opts = check_options(options)
    report = check_can_migrate(mail=address, options=opts, user=user)
    needs_approval = MigrationSettings.current().require_approval_for_single
    try:
        with transaction.atomic():
            migration = Migration.objects.create(
                mail=address, options=opts.to_dict(), method=opts.method, requested_by=user, preflight=report,
                group_name=report.get("group_name") or "", original_dn=report.get("group_dn") or "",
                group_guid=report.get("group_guid") or None, plan_hash=report.get("plan_hash") or "",
                status=MigrationStatus.AWAITING_APPROVAL if needs_approval else MigrationStatus.QUEUED)
    except IntegrityError:
        # Two requests for one list at once: the database's unique constraint let only one through.
        raise MigrationRefused(f"{address} already has an open migration: open it instead of starting another.") \
            from None
    record(actor=user, action="dl.migration.request", target=f"dl:{address}",
           after={"migration": migration.pk, "options": opts.to_dict(), "needs_approval": needs_approval},
           request=request)
    if not needs_approval:
        _queue_migration(migration=migration, user=user, request=request, enqueue=enqueue)
    return migration


def _queue_migration(*, migration: Migration, user, request=None, enqueue: bool = True, on_behalf_of=None) -> None:
    job = do_start_job(kind=KIND_MIGRATE, user=user, params={"migration_id": migration.pk}, target=migration.mail,
                       request=request, enqueue=enqueue, on_behalf_of=on_behalf_of)
    Migration.objects.filter(pk=migration.pk).update(job=job, status=MigrationStatus.QUEUED)
    migration.job, migration.status = job, MigrationStatus.QUEUED


MIGRATION_SIGNOFF = SignOff(
    model=Migration, kwarg="migration", permission="migrations_app.approve_migration", what="a migration",
    refused=MigrationRefused, awaiting=MigrationStatus.AWAITING_APPROVAL, approved=None,
    rejected=MigrationStatus.REJECTED, audit="dl.migration", label=lambda m: f"Migration #{m.pk}",
    target=lambda m: f"dl:{m.mail}", this="this migration")


@MIGRATION_SIGNOFF.audited("approve")
@transaction.atomic
def do_approve_migration(*, migration: Migration, user, valid_for: timedelta | None = None, note: str = "",
                         request=None, enqueue: bool = True) -> Migration:
    """Sign off what the request's preflight planned (its plan hash); the run refuses if the list no
    longer matches that plan, or once the approval has expired."""
    migration = do_sign(MIGRATION_SIGNOFF, obj=migration, user=user, valid_for=valid_for, note=note,
                        audit={"migration": migration.pk}, request=request)
    # The approver starts it (the audit log names them) on behalf of the requester, whose request it is
    # and whose migrate_dl permission it runs under: an Approver signs, they do not migrate.
    _queue_migration(migration=migration, user=user, on_behalf_of=migration.requested_by, request=request,
                     enqueue=enqueue)
    migration.refresh_from_db()
    return migration


@MIGRATION_SIGNOFF.audited("reject")
@transaction.atomic
def do_reject_migration(*, migration: Migration, user, reason: str = "", request=None) -> Migration:
    return do_decline(MIGRATION_SIGNOFF, obj=migration, user=user, reason=reason,
                      fields={"finished_at": timezone.now()}, audit={"migration": migration.pk}, request=request)


@MIGRATION_SIGNOFF.audited("withdraw")
@transaction.atomic
def do_withdraw_migration(*, migration: Migration, user, request=None) -> Migration:
    """The requester takes back a request nobody has signed yet."""
    migration = Migration.objects.select_for_update().get(pk=migration.pk)
    if migration.requested_by_id != user.pk:
        raise MigrationRefused("Only the person who requested this migration can withdraw it.")
    if migration.status != MigrationStatus.AWAITING_APPROVAL:
        raise MigrationRefused(f"Migration #{migration.pk} is {migration.get_status_display().lower()}: only a "
                               "request awaiting approval can be withdrawn.")
    Migration.objects.filter(pk=migration.pk).update(status=MigrationStatus.CANCELLED, finished_at=timezone.now(),
                                                     decision_note="Withdrawn by the requester.")
    record(actor=user, action="dl.migration.withdraw", target=f"dl:{migration.mail}",
           after={"migration": migration.pk}, request=request)
    migration.refresh_from_db()
    return migration


def do_start_inventory(*, user, request=None, enqueue: bool = True) -> Job:
    return do_start_job(kind=KIND_INVENTORY, user=user, params={}, target="all synced lists", request=request,
                        enqueue=enqueue)


def _check_migrated(migration: Migration, user, what: str) -> None:
    if not user.has_perm("migrations_app.change_migrated_dl"):
        raise PermissionDenied(f"{what} needs the Administrator role.")
    if not migration.is_done:
        raise MigrationRefused(f"Migration #{migration.pk} is {migration.get_status_display().lower()}: only a "
                               "migrated list can be changed this way.")
    if migration.method == MigrationMethod.IN_PLACE:
        # The aftercare jobs act on the recreate method's artefacts (new list, '!' original, dynamic list).
        raise MigrationRefused(f"{migration.mail} was converted in place: change it in Exchange Online, where it is "
                               "managed now.")


def do_start_enable_hybrid_mail_flow(*, migration: Migration, user, request=None, enqueue: bool = True) -> Job:
    _check_migrated(migration, user, "Enabling hybrid mail flow")
    if migration.dynamic_list_dn:
        raise MigrationRefused(f"{migration.mail} already has hybrid mail flow ({migration.dynamic_list_dn}).")
    return do_start_job(kind=KIND_HYBRID, user=user, params={"migration_id": migration.pk}, target=migration.mail,
                        request=request, enqueue=enqueue)


def do_start_update_address(*, migration: Migration, new_address: str, new_alias: str = "", user, request=None,
                            enqueue: bool = True) -> Job:
    _check_migrated(migration, user, "Changing the address of a migrated list")
    address = check_address(new_address)
    alias = check_alias(new_alias) if new_alias else ""
    if address.lower() == migration.mail.lower() and not alias:
        raise MigrationRefused(f"{address} is already the list's primary address.")
    return do_start_job(kind=KIND_ADDRESS, user=user, target=migration.mail, request=request, enqueue=enqueue,
                        params={"migration_id": migration.pk, "new_address": address, "new_alias": alias})


def do_start_restore(*, migration: Migration, user, request=None, enqueue: bool = True) -> Job:
    if not user.has_perm("migrations_app.restore_dl"):
        raise PermissionDenied("Restoring a list needs the Administrator role.")
    if not migration.is_done:
        raise MigrationRefused(f"Migration #{migration.pk} is {migration.get_status_display().lower()}: only a "
                               "migrated list can be restored.")
    if not migration.backups.exists():
        raise MigrationRefused(f"Migration #{migration.pk} has no backup to restore from.")
    return do_start_job(kind=KIND_RESTORE, user=user, params={"migration_id": migration.pk}, target=migration.mail,
                        request=request, enqueue=enqueue)


def do_start_take_back_preview(*, migration: Migration, user, request=None, enqueue: bool = True) -> Job:
    """Reads (changes nothing) what a take-back of a list converted in place would overwrite, for the page to
    show before anyone confirms the take-back."""
    if not user.has_perm("migrations_app.restore_dl"):
        raise PermissionDenied("Previewing a take-back needs the Administrator role.")
    if migration.method != MigrationMethod.IN_PLACE:
        raise MigrationRefused(f"Migration #{migration.pk} recreated the list: only a list converted in place is "
                               "taken back.")
    if not migration.is_done:
        raise MigrationRefused(f"Migration #{migration.pk} is {migration.get_status_display().lower()}: only a "
                               "converted list can be taken back.")
    if not migration.backups.exists():
        raise MigrationRefused(f"Migration #{migration.pk} has no backup to compare with.")
    return do_start_job(kind=KIND_TAKE_BACK_PREVIEW, user=user, params={"migration_id": migration.pk},
                        target=migration.mail, request=request, enqueue=enqueue)


def _settings_snapshot(current: MigrationSettings) -> dict[str, bool]:
    return {"require_approval_for_single": current.require_approval_for_single,
            "default_hybrid_mail_flow": current.default_hybrid_mail_flow,
            "default_keep_original": current.default_keep_original}


@transaction.atomic
def do_update_settings(*, user, require_approval_for_single: bool, default_hybrid_mail_flow: bool,
                       default_keep_original: bool, request=None) -> MigrationSettings:
    """Save the settings. Turning four eyes *off* is only requested here: it waits for a second
    Administrator (do_confirm_four_eyes_off); turning it on takes effect at once."""
    if not user.has_perm("migrations_app.manage_migration_settings"):
        raise PermissionDenied("Changing the migration settings needs the Administrator role.")
    current = MigrationSettings.objects.select_for_update().get(pk=MigrationSettings.current().pk)
    before = _settings_snapshot(current)
    turning_off = current.require_approval_for_single and not require_approval_for_single
    if turning_off:
        if current.four_eyes_off_requested_by_id is None:
            current.four_eyes_off_requested_by, current.four_eyes_off_requested_at = user, timezone.now()
            record(actor=user, action="dl.settings.four_eyes_off.request", target="dl:settings",
                   before={"require_approval_for_single": True}, request=request)
    else:
        current.require_approval_for_single = require_approval_for_single
        if require_approval_for_single:
            current.four_eyes_off_requested_by = current.four_eyes_off_requested_at = None
    current.default_hybrid_mail_flow = default_hybrid_mail_flow
    current.default_keep_original = default_keep_original
    current.updated_by = user
    current.save()
    record(actor=user, action="dl.settings.update", target="dl:settings", before=before,
           after=_settings_snapshot(current), request=request)
    return current


@transaction.atomic
def do_confirm_four_eyes_off(*, user, request=None) -> MigrationSettings:
    """The second Administrator's confirmation; both names go to the audit log."""
    if not user.has_perm("migrations_app.manage_migration_settings"):
        raise PermissionDenied("Changing the migration settings needs the Administrator role.")
    current = MigrationSettings.objects.select_for_update().get(pk=MigrationSettings.current().pk)
    requester = current.four_eyes_off_requested_by
    if requester is None or not current.require_approval_for_single:
        raise MigrationRefused("Nobody has asked to turn four eyes off; there is nothing to confirm.")
    if requester.pk == user.pk:
        raise MigrationRefused("Four eyes: another Administrator must confirm turning approvals off.")
    current.require_approval_for_single = False
    current.four_eyes_off_requested_by = current.four_eyes_off_requested_at = None
    current.updated_by = user
    current.save()
    record(actor=user, action="dl.settings.four_eyes_off", target="dl:settings",
           before={"require_approval_for_single": True}, after={"require_approval_for_single": False},
           detail={"requested_by": requester.get_username(), "confirmed_by": user.get_username()}, request=request)
    return current


@transaction.atomic
def do_withdraw_four_eyes_off(*, user, request=None) -> MigrationSettings:
    if not user.has_perm("migrations_app.manage_migration_settings"):
        raise PermissionDenied("Changing the migration settings needs the Administrator role.")
    current = MigrationSettings.objects.select_for_update().get(pk=MigrationSettings.current().pk)
    if current.four_eyes_off_requested_by_id is not None:
        current.four_eyes_off_requested_by = current.four_eyes_off_requested_at = None
        current.save()
        record(actor=user, action="dl.settings.four_eyes_off.withdraw", target="dl:settings", request=request)
    return current
