"""Set-MailContact."""

from __future__ import annotations

from typing import Any

from ..directory import _Session
from .set_common import _set


def _set_mail_contact(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    return _set(session, bound, {"contact"})
