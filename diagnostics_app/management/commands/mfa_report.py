"""`manage.py mfa_report --format csv|json [--policy NAME|ID [--status S]]`: the latest (or a given) MFA snapshot,
as the page exports it; with ``--policy``, one conditional access policy's users, as its page exports them."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from diagnostics_app.mfa import policy_selectors
from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.mfa.exports import csv_lines, json_chunks, policy_csv_lines, policy_records
from diagnostics_app.mfa.selectors import snapshot_or_latest, snapshot_rows


class Command(BaseCommand):
    help = "Print an MFA registration snapshot's users as CSV or JSON."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=("csv", "json"), default="csv")
        parser.add_argument("--snapshot", type=int, help="snapshot id (default: the latest)")
        parser.add_argument("--classification", choices=MfaClass.values, help="only users of this class")
        parser.add_argument("--policy", help="a conditional access policy (display name or id): its users instead")
        parser.add_argument("--status", choices=sorted(policy_selectors.POLICY_USER_STATUSES),
                            help="with --policy: only users of this status under it")

    def handle(self, *args, **opts):
        snapshot = snapshot_or_latest(opts["snapshot"])
        if snapshot is None:
            raise CommandError("No MFA snapshot yet: run `manage.py mfa_snapshot` first."
                               if not opts["snapshot"] else f"There is no MFA snapshot #{opts['snapshot']}.")
        if opts["policy"]:
            self._policy(snapshot, opts)
            return
        rows = snapshot_rows(snapshot)
        if opts["classification"]:
            rows = rows.filter(classification=opts["classification"])
        chunks = csv_lines(rows, snapshot) if opts["format"] == "csv" else json_chunks(rows, snapshot)
        for chunk in chunks:
            self.stdout.write(chunk, ending="")

    def _policy(self, snapshot, opts) -> None:
        import json

        wanted = opts["policy"].strip().lower()
        policies = list(policy_selectors.snapshot_policies(snapshot))
        policy = next((p for p in policies if wanted in (p.policy_id.lower(), p.display_name.lower())), None)
        if policy is None:
            names = ", ".join(sorted(p.display_name for p in policies)) or "none"
            raise CommandError(f"Snapshot #{snapshot.pk} has no policy {opts['policy']!r} (it has: {names}).")
        rows = policy_selectors.policy_users(policy, status=opts["status"] or "").order_by("upn", "id")
        if opts["format"] == "csv":
            for chunk in policy_csv_lines(policy, rows):
                self.stdout.write(chunk, ending="")
            return
        self.stdout.write(json.dumps({"snapshot": snapshot.pk, "policy": policy.display_name,
                                      "policy_id": policy.policy_id, "state": policy.state,
                                      "users": list(policy_records(policy, rows))}))
