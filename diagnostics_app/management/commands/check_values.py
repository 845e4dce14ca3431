"""`manage.py check_values < objects.json`: the Address repair rules over objects given as JSON, no directory.

Input: ``{"objects": [{"dn": ..., "objectClass": [...], "attributes": {name: value or [values]}}],
"tenant": [Graph-shaped cloud objects], "verified_domains": [...], "initial_domain": "..."}``.
Output: ``{"findings": [...], "skipped": [dn, ...]}`` (Finding.as_dict), the same rules the scan job runs.
"""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from diagnostics_app.addresses.rules import ScanConfig, cloud_object, entry, evaluate


class Command(BaseCommand):
    help = "Check directory values read as JSON on stdin with the Address repair rules; print JSON findings."

    def add_arguments(self, parser):
        parser.add_argument("--certificate-attribute", default=settings.ADDRESS_REPAIR_CERTIFICATE_ATTRIBUTE,
                            help="the AD attribute mapped to certificateUserIds ('' to skip the check)")

    def handle(self, *args, **opts):
        try:
            data = json.load(sys.stdin)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"The input is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise CommandError('The input must be an object with an "objects" list.')
        entries = []
        for number, item in enumerate(data["objects"], start=1):
            if not isinstance(item, dict) or not isinstance(item.get("dn"), str) or \
                    not isinstance(item.get("attributes", {}), dict):
                raise CommandError(f'objects[{number}] needs a "dn" string and an "attributes" object.')
            entries.append(entry(dn=item["dn"], object_class=item.get("objectClass") or ["user"],
                                 attributes=item.get("attributes", {}), anchor=item.get("anchor")))
        tenant = [cloud_object(o) for o in data.get("tenant") or [] if isinstance(o, dict)]
        verified = tuple(d for d in data.get("verified_domains") or [] if isinstance(d, str))
        config = ScanConfig(verified_domains=verified, initial_domain=str(data.get("initial_domain") or ""),
                            certificate_attribute=opts["certificate_attribute"] or None,
                            extra_tlds=tuple(settings.ADDRESS_REPAIR_EXTRA_TLDS))
        findings, skipped = evaluate(entries, config=config, tenant=tenant)
        json.dump({"findings": [f.as_dict() for f in findings], "skipped": [dn for dn, _ in skipped]},
                  self.stdout, indent=1, ensure_ascii=False)
        self.stdout.write("")
