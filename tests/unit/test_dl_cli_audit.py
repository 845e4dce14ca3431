"""The dl_* commands leave an audit event naming the operating-system account that ran them beside the portal
account given with --user, refused or not. No lab needed: each case stops before a directory is touched."""

from __future__ import annotations

import getpass
import os
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from migrations_app.management.commands import _dl_cli
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def cli_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="cli.invoke").order_by("id"))


def test_an_accepted_invocation_records_the_os_user_and_the_portal_user(role_users):
    with pytest.raises(CommandError, match="no migration #424242"):
        call_command("dl_update_address", "424242", "--address", "new@contoso.com", "--user", "administrator")
    [event] = cli_events()
    assert event.actor == role_users["Administrator"] and event.actor_name == "administrator"
    assert event.target == "cli:dl_update_address"
    assert event.detail["os_user"] == getpass.getuser()
    assert event.detail["as_user"] == "administrator"
    assert event.detail["host"] == socket.gethostname() and event.detail["pid"] == os.getpid()
    assert event.detail["arguments"] == {"migration_id": 424242, "address": "new@contoso.com", "json": False}
    assert "refused" not in event.detail


def test_a_user_without_the_permission_is_refused_and_still_audited(role_users):
    with pytest.raises(CommandError, match="may not do this"):
        call_command("dl_preflight", "sales@contoso.com", "--user", "auditor", "--option", "name_prefix=EXO-")
    [event] = cli_events()
    assert event.actor == role_users["Auditor"]
    assert event.detail["os_user"] == getpass.getuser()
    assert event.detail["arguments"]["mail"] == "sales@contoso.com"
    assert event.detail["arguments"]["option"] == ["name_prefix=EXO-"]
    assert "migrations_app.run_preflight" in event.detail["refused"]


def test_an_unknown_portal_user_is_audited_with_the_name_that_was_typed():
    with pytest.raises(CommandError, match="No active user 'mallory'"):
        call_command("dl_restore", "7", "--user", "mallory")
    [event] = cli_events()
    assert event.actor is None
    assert event.detail["as_user"] == "mallory" and event.detail["os_user"] == getpass.getuser()
    assert event.detail["refused"] == "No active user 'mallory'."


def test_a_process_without_a_login_name_is_named_by_its_uid(monkeypatch):
    def no_login():
        raise OSError("No username set in the environment")

    monkeypatch.setattr(_dl_cli.getpass, "getuser", no_login)
    assert _dl_cli.os_user() == f"uid {os.getuid()}"
