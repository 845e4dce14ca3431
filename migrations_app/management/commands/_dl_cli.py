"""What the dl_* commands share: acting as a named user (audited with the OS account that ran them),
parsing --option k=v, printing text or JSON."""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import fields
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from migrations_app.models import Migration
from migrations_app.options import MigrationOptions
from portal.audit.services import record

_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


# Django's own options say nothing about what was asked; --user is recorded as as_user.
_BASE_OPTIONS = frozenset({"verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color",
                           "skip_checks", "user"})


def os_user() -> str:
    """Who ran the command on this machine: --user names a portal account anyone with a shell can type."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's UID without a passwd entry or LOGNAME
        return f"uid {os.getuid()}"


def record_cli_invocation(*, command: str, as_user: str, user, arguments: dict[str, Any], refused: str = ""):
    """One audit event per dl_* command, before it acts: the portal account it acts as, and the operating-system
    account and host that ran it (the events the services record next carry only the portal account)."""
    return record(actor=user, action="cli.invoke", target=f"cli:{command}",
                  detail={"command": command, "as_user": as_user, "os_user": os_user(),
                          "host": socket.gethostname(), "pid": os.getpid(), "arguments": arguments,
                          **({"refused": refused} if refused else {})})


class DlCommand(BaseCommand):
    permission = ""

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username to act as; must hold the permission.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def execute(self, *args, **options):
        self._arguments = {k: v for k, v in options.items() if k not in _BASE_OPTIONS and v not in (None, "", [])}
        return super().execute(*args, **options)

    def acting_user(self, username: str):
        command = self.__module__.rsplit(".", 1)[-1]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        refusal = ""
        if user is None:
            refusal = f"No active user '{username}'."
        elif self.permission and not user.has_perm(self.permission):
            refusal = f"{username} may not do this: it needs the permission {self.permission}."
        record_cli_invocation(command=command, as_user=username, user=user, refused=refusal,
                              arguments=getattr(self, "_arguments", {}))
        if refusal:
            raise CommandError(refusal)
        return user

    def emit(self, data: dict[str, Any], text: str, as_json: bool) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str) if as_json else text)

    def refused(self, exc: Exception) -> CommandError:
        kind = "Not allowed" if isinstance(exc, PermissionDenied) else "Refused"
        return CommandError(f"{kind}: {exc} Nothing was queued.")


def add_option_arguments(parser, *, methods: tuple[str, ...] = ("recreate", "in-place"),
                         method_help: str = "recreate (default) or in-place: hand the list's source of authority "
                                            "to the cloud.") -> None:
    names = ", ".join(f.name for f in fields(MigrationOptions))
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help=f"A migration option, repeatable. Keys: {names}.")
    parser.add_argument("--method", choices=methods, default=None, help=method_help)


def parse_options(pairs: list[str], *, defaults: dict[str, Any] | None = None,
                  method: str | None = None) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(MigrationOptions)}
    out: dict[str, Any] = dict(defaults or {})
    if method:
        out["method"] = method.replace("-", "_")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in kinds:
            raise CommandError(f"Refused: option {pair!r} is not KEY=VALUE with a known key "
                               f"({', '.join(kinds)}). Nothing was queued.")
        if kinds[key] in (bool, "bool"):
            if value.strip().lower() not in _BOOL:
                raise CommandError(f"Refused: option {key} takes true or false, not {value!r}. Nothing was queued.")
            out[key] = _BOOL[value.strip().lower()]
        else:
            out[key] = value.strip()
    return out


def default_options() -> dict[str, Any]:
    from migrations_app.selectors import migration_settings

    current = migration_settings()
    return {"hybrid_mail_flow": current.default_hybrid_mail_flow, "keep_original": current.default_keep_original}


def get_migration(pk: int) -> Migration:
    migration = Migration.objects.filter(pk=pk).first()
    if migration is None:
        raise CommandError(f"There is no migration #{pk}.")
    return migration


def migration_dict(migration: Migration) -> dict[str, Any]:
    migration.refresh_from_db()
    job = migration.job
    return {"id": migration.pk, "mail": migration.mail, "status": migration.status,
            "status_label": migration.get_status_display(), "options": migration.options, "method": migration.method,
            "requested_by": migration.requested_by.username if migration.requested_by else None,
            "approved_by": migration.approved_by.username if migration.approved_by else None,
            "job": {"id": job.pk, "status": job.status, "summary": job.summary} if job else None,
            "original_dn": migration.original_dn, "cloud_group_id": migration.cloud_group_id,
            "contact_dn": migration.contact_dn, "dynamic_list_dn": migration.dynamic_list_dn,
            "post_create_errors": migration.post_create_errors, "report": migration.report,
            "backups": list(migration.backups.values_list("kind", flat=True))}


def job_dict(job) -> dict[str, Any]:
    return {"id": job.pk, "kind": job.kind, "status": job.status, "summary": job.summary, "result": job.result}


def preflight_text(report: dict[str, Any]) -> str:
    lines = [f"Preflight of {report.get('mail')}: {report.get('summary')}"]
    for check in report.get("checks") or []:
        lines.append(f"  [{check['outcome'].upper():7}] {check['title']}: {check['detail']}")
        for obj in check.get("objects") or []:
            lines.append(f"             - {obj}")
        if check.get("objects_total", 0) > len(check.get("objects") or []):
            lines.append(f"             … {check['objects_total']} in all")
        if check["outcome"] != "pass" and check.get("remedy"):
            lines.append(f"             What to do: {check['remedy']}")
    return "\n".join(lines)
