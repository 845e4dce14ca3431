from __future__ import annotations

from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone


def locked_out_attempts() -> QuerySet[AccessAttempt]:
    """django-axes' counts that lock a sign-in now: at the limit, and the last failure within the cool-off
    (an older one no longer refuses anyone; axes clears it at the next attempt)."""
    since = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    return AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
                                        attempt_time__gte=since).order_by("-attempt_time")


def lockout_until(attempt: AccessAttempt):
    return attempt.attempt_time + timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
