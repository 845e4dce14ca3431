"""`manage.py writeback_dn`: the DNs group writeback gives cloud groups, one JSON line in, one out.

In:  {"objectId": "...", "displayName": "...", "container": "OU=..."}
Out: {"default": {"cn", "dn"}, "display_name": {"cn", "dn", "truncated", "flags", "changes"}}
A line that cannot be read gives {"line": n, "error": "..."}; the command then ends with status 1.
Same code as the lab's sync engine and the rename plan (portal/directory/writeback_names.py).
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from portal.connectors.ad import InvalidDn
from portal.directory import writeback_names as wn


class Command(BaseCommand):
    help = "Compute writeback DNs from JSON lines on standard input (objectId, displayName, container)."

    def handle(self, *args, **opts):
        errors = 0
        for n, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("a line must be a JSON object")
                container = doc.get("container")
                if not isinstance(container, str) or not container.strip():
                    raise ValueError("container (the writeback OU's DN) is missing")
                name = doc.get("displayName")
                if name is not None and not isinstance(name, str):
                    raise ValueError("displayName must be text")
                out = wn.names_for(object_id=doc.get("objectId"), display_name=name, container=container)
            except (ValueError, InvalidDn) as exc:
                errors += 1
                out = {"line": n, "error": str(exc)}
            self.stdout.write(json.dumps(out, ensure_ascii=False))
        if errors:
            raise CommandError(f"{errors} line(s) could not be read")
