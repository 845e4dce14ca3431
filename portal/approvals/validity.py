"""How long an approval may wait for its run: the approver chooses, within the configured maximum."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


class ApprovalRefused(Exception):
    """The approval cannot be given as asked (the person reads the reason; nothing was changed)."""


def check_approval_validity(valid_for: timedelta | None, *,
                            refused: type[Exception] = ApprovalRefused) -> timedelta:
    """The validity to store; ``refused`` is the area's own refusal, raised when the choice is out of range."""
    maximum = timedelta(hours=settings.DL_APPROVAL_MAX_VALID_HOURS)
    chosen = valid_for if valid_for is not None else timedelta(hours=settings.DL_APPROVAL_DEFAULT_VALID_HOURS)
    if chosen <= timedelta(0) or chosen > maximum:
        raise refused(f"An approval is valid for at most {maximum.days or maximum.seconds // 3600} "
                      f"{'day(s)' if maximum.days else 'hour(s)'}; choose a shorter time.")
    return chosen
