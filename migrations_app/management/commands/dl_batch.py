"""manage.py dl_batch <action> [batch] … --user U [--json]: the batch services of the pages, from a shell.

  create --name N [--method recommended|recreate|in-place] [--option k=v …] [--window-start ISO] [--window-end ISO]
  method ID ADDRESS=recreate|in-place|batch …   a list's own method (batch: the batch's rule decides again)
  add ID ADDRESS …            preflight ID (inline)          submit ID
  approve ID --plan-hash H [--note T] [--valid-hours N]     reject ID --note T
  schedule ID [--at-window]   run ID (schedule now, each list's migration inline here, children first)
  pause ID | resume ID | cancel ID | status ID
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime

from migrations_app import batch_run
from migrations_app import batch_services as bsvc
from migrations_app.models import MigrationBatch
from migrations_app.services import MigrationRefused
from portal.jobs.services import run_job_inline

from ._dl_cli import DlCommand, add_option_arguments, default_options, parse_options

ACTIONS = ("create", "add", "method", "preflight", "submit", "approve", "reject", "schedule", "run", "pause", "resume",
           "cancel", "status")


def batch_dict(batch: MigrationBatch) -> dict[str, Any]:
    batch.refresh_from_db()
    job = batch.job
    return {
        "id": batch.pk, "name": batch.name, "status": batch.status, "status_label": batch.get_status_display(),
        "paused": batch.paused, "options": batch.options, "method": batch.method, "plan_hash": batch.plan_hash,
        "requested_by": batch.requested_by.username if batch.requested_by else None,
        "approved_by": batch.approved_by.username if batch.approved_by else None,
        "approval_expires_at": batch.approval_expires_at, "decision_note": batch.decision_note,
        "window_start": batch.window_start, "window_end": batch.window_end,
        "preflight_summary": batch.preflight_summary,
        "job": {"id": job.pk, "status": job.status, "summary": job.summary} if job else None,
        "lists": [{"mail": i.mail, "preflight": i.outcome, "wave": (i.preflight or {}).get("wave"),
                   "method": i.method, "planned_method": (i.preflight or {}).get("method"),
                   "method_source": (i.preflight or {}).get("method_source"),
                   "plan_hash": i.plan_hash, "run_state": i.run_state, "run_note": i.run_note,
                   "migration": i.migration_id, "job": i.migration.job_id if i.migration else None}
                  for i in batch.lists.select_related("migration").order_by("mail")],
    }


def _when(text: str | None, name: str):
    if not text:
        return None
    value = parse_datetime(text)
    if value is None or value.tzinfo is None:
        raise CommandError(f"Refused: {name} {text!r} is not an ISO date and time with its zone "
                           "(e.g. 2026-12-05T22:00:00+00:00). Nothing was changed.")
    return value


class Command(DlCommand):
    help = "Build, preflight, sign off, schedule, run and follow a migration batch (the pages' services)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("batch", nargs="?", type=int, help="The batch's number (all actions but create).")
        parser.add_argument("addresses", nargs="*", help="add: the lists' primary SMTP addresses.")
        parser.add_argument("--name")
        parser.add_argument("--window-start")
        parser.add_argument("--window-end")
        parser.add_argument("--plan-hash", help="approve: the batch plan hash you read (dl_batch status).")
        parser.add_argument("--note", default="")
        parser.add_argument("--valid-hours", type=float)
        parser.add_argument("--at-window", action="store_true", help="schedule: start at the window's start.")
        add_option_arguments(parser, methods=("recommended", "recreate", "in-place"),
                             method_help="create: the method of each list without one of its own: recommended (per "
                                         "list, from its preflight), recreate or in-place for every list.")
        super().add_arguments(parser)

    def handle(self, *args, **opts):
        user = self.acting_user(opts["user"])
        action = opts["action"]
        try:
            batch = self._act(action, user, opts)
        except (MigrationRefused, PermissionDenied) as exc:
            raise CommandError(f"{'Not allowed' if isinstance(exc, PermissionDenied) else 'Refused'}: {exc} "
                               "Nothing was changed.") from None
        data = batch_dict(batch)
        lines = [f"Batch #{data['id']} {data['name']}: {data['status_label']}"
                 + (" (paused)" if data["paused"] else "") + (f"; plan {data['plan_hash']}" if data["plan_hash"]
                                                               else "")]
        lines += [f"  {i['mail']}: {i['planned_method'] or i['method'] or 'method to judge'}"
                  + (f" ({i['method_source']})" if i["method_source"] else "")
                  + f", preflight {i['preflight']}, run {i['run_state']}"
                  + (f" ({i['run_note']})" if i["run_note"] else "") for i in data["lists"]]
        self.emit(data, "\n".join(lines), opts["json"])
        if action == "run" and data["status"] not in ("completed", "completed_warnings"):
            raise CommandError(f"Batch #{data['id']} ended {data['status_label'].lower()}.", returncode=3)

    def _batch(self, opts) -> MigrationBatch:
        batch = MigrationBatch.objects.filter(pk=opts["batch"]).first() if opts["batch"] else None
        if batch is None:
            raise CommandError(f"There is no batch #{opts['batch']}." if opts["batch"] else
                               "Give the batch's number.")
        return batch

    def _act(self, action: str, user, opts) -> MigrationBatch:
        if action == "create":
            return bsvc.do_create_batch(name=opts["name"] or "", user=user,
                                        options=parse_options(opts["option"], defaults=default_options()),
                                        method=(opts["method"] or "").replace("-", "_") or None,
                                        window_start=_when(opts["window_start"], "--window-start"),
                                        window_end=_when(opts["window_end"], "--window-end"))
        batch = self._batch(opts)
        if action == "status" and not user.has_perm("accounts.view_dl_migration"):
            raise PermissionDenied("Reading a batch needs a portal role.")
        if action == "add":
            if not opts["addresses"]:
                raise CommandError("Give the addresses to add.")
            try:
                bsvc.do_add_to_batch(batch=batch, values=list(enumerate(opts["addresses"], 1)), user=user,
                                     source="cli")
            except bsvc.RowsRefused as exc:
                rows = "; ".join(f"{r.value}: {r.problem}" for r in exc.rows if not r.ok)
                raise CommandError(f"Refused: {exc} {rows}") from None
        elif action == "method":
            by_mail = {i.mail.lower(): i.pk for i in batch.lists.all()}
            methods: dict[int, str] = {}
            for pair in opts["addresses"]:
                mail, _, method = pair.rpartition("=")
                if mail.lower() not in by_mail or method not in ("recreate", "in-place", "batch"):
                    raise CommandError(f"Refused: {pair!r} is not ADDRESS=recreate|in-place|batch with an address of "
                                       f"batch #{batch.pk}. Nothing was changed.")
                methods[by_mail[mail.lower()]] = "" if method == "batch" else method.replace("-", "_")
            bsvc.do_set_list_methods(batch=batch, methods=methods, user=user)
        elif action == "preflight":
            run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=user, enqueue=False))
        elif action == "submit":
            bsvc.do_submit_batch(batch=batch, user=user)
        elif action == "approve":
            if not opts["plan_hash"]:
                raise CommandError("Give --plan-hash: the plan you read with 'dl_batch status' is what you sign.")
            bsvc.do_approve_batch(batch=batch, user=user, signed_hash=opts["plan_hash"], note=opts["note"],
                                  valid_for=timedelta(hours=opts["valid_hours"]) if opts["valid_hours"] else None)
        elif action == "reject":
            bsvc.do_reject_batch(batch=batch, user=user, reason=opts["note"])
        elif action == "schedule":
            batch_run.do_schedule_batch(batch=batch, user=user, now_=not opts["at_window"])
        elif action == "run":
            batch = batch_run.do_schedule_batch(batch=batch, user=user, enqueue=False, inline=True)
            if batch.job is not None:
                run_job_inline(batch.job)
        elif action in ("pause", "resume"):
            batch_run.do_pause_batch(batch=batch, user=user, paused=action == "pause")
        elif action == "cancel":
            bsvc.do_cancel_batch(batch=batch, user=user)
        return batch
