"""`manage.py mfa_report --format csv|json`: the latest (or a given) MFA snapshot, as the page exports it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.mfa.exports import csv_lines, json_chunks
from diagnostics_app.mfa.selectors import snapshot_or_latest, snapshot_rows


class Command(BaseCommand):
    help = "Print an MFA registration snapshot's users as CSV or JSON."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=("csv", "json"), default="csv")
        parser.add_argument("--snapshot", type=int, help="snapshot id (default: the latest)")
        parser.add_argument("--classification", choices=MfaClass.values, help="only users of this class")

    def handle(self, *args, **opts):
        snapshot = snapshot_or_latest(opts["snapshot"])
        if snapshot is None:
            raise CommandError("No MFA snapshot yet: run `manage.py mfa_snapshot` first."
                               if not opts["snapshot"] else f"There is no MFA snapshot #{opts['snapshot']}.")
        rows = snapshot_rows(snapshot)
        if opts["classification"]:
            rows = rows.filter(classification=opts["classification"])
        chunks = csv_lines(rows, snapshot) if opts["format"] == "csv" else json_chunks(rows, snapshot)
        for chunk in chunks:
            self.stdout.write(chunk, ending="")
