"""Who hears about a batch's move: in the portal's inbox always, by e-mail when EMAIL_HOST is set."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q

from .choices import BatchStatus
from .models import MigrationBatch, Notification

log = logging.getLogger(__name__)


def approvers(*, exclude_pk: int | None) -> list:
    """Active users holding approve_migration (through a role group, directly, or as superuser)."""
    perm = Q(content_type__app_label="migrations_app", codename="approve_migration")
    from django.contrib.auth.models import Permission

    granted = Permission.objects.filter(perm)
    users = get_user_model().objects.filter(is_active=True).filter(
        Q(groups__permissions__in=granted) | Q(user_permissions__in=granted) | Q(is_superuser=True)).distinct()
    return [u for u in users if u.pk != exclude_pk]


def _sentence(batch: MigrationBatch, actor) -> str:
    who = actor.get_username() if actor else "the portal"
    label = f"Batch #{batch.pk} '{batch.name}' ({batch.lists.count()} list(s))"
    return {
        BatchStatus.SUBMITTED: f"{label} waits for your sign-off (submitted by {who}).",
        BatchStatus.APPROVED: f"{label} was approved by {who}: schedule it from its page.",
        BatchStatus.REJECTED: f"{label} was rejected by {who}: {batch.decision_note}",
        BatchStatus.SCHEDULED: f"{label} is scheduled by {who}.",
        BatchStatus.RUNNING: f"{label} is running.",
        BatchStatus.CANCELLED: f"{label} was cancelled by {who}.",
    }.get(batch.status, f"{label} ended: {batch.get_status_display().lower()}.")


def notify_batch_moved(*, batch_id: int, before: str, actor_id: int | None) -> list[Notification]:
    batch = MigrationBatch.objects.select_related("requested_by", "approved_by").filter(pk=batch_id).first()
    if batch is None:
        return []
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    if batch.status == BatchStatus.SUBMITTED:
        # Back from a sign-off: the approver who signed hears it as well as everyone else who may sign.
        recipients = approvers(exclude_pk=batch.requested_by_id)
    elif batch.status == BatchStatus.DRAFT:
        return []
    else:
        recipients = [batch.requested_by] if batch.requested_by else []
    recipients = [u for u in recipients if u is not None and u.pk != actor_id]
    text = _sentence(batch, actor)
    made = Notification.objects.bulk_create(
        [Notification(user=u, text=text[:500], url=batch.get_absolute_url()) for u in recipients])
    mailed = [u.email for u in recipients if u.email]
    if settings.EMAIL_HOST and mailed:
        try:
            send_mail(subject=f"[DirOps] {text[:120]}", message=f"{text}\n\n{batch.get_absolute_url()}\n",
                      from_email=None, recipient_list=mailed)
        except Exception as exc:  # noqa: BLE001 - the inbox has it; a mail server down stops nothing
            log.warning("Notification e-mail for batch #%s not sent: %s", batch.pk, exc)
    return made


def do_mark_read(*, user) -> int:
    from django.utils import timezone

    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
