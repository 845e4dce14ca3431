"""`manage.py proxycalc < object.json`: what Entra ID computes for one on-premises object, with the steps.

Input (JSON object): ``kind`` (user/group/contact), ``recipient`` (mailbox/mail_enabled/not_mail_enabled),
``userPrincipalName``, ``mail``, ``mailNickname``, ``proxyAddresses`` [...], ``targetAddress``,
``verified_domains`` [...], ``initial_domain``, optional ``cloud`` {mail, mailNickname, proxyAddresses} (what the
cloud object has now) and ``in_use`` [addresses other objects of the tenant hold].
Output: the computed cloud values, the rule behind each address, the addresses dropped and why, the steps.
The page Address repair → ProxyCalc explainer runs the same :func:`portal.addressing.explain.explain`.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from portal.addressing.explain import ExplainInputError, explain


class Command(BaseCommand):
    help = "Explain what ProxyCalc computes for one on-premises object read as JSON on stdin; print JSON."

    def handle(self, *args, **opts):
        try:
            data = json.load(sys.stdin)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"The input is not JSON: {exc}") from None
        try:
            answer = explain(data)
        except ExplainInputError as exc:
            json.dump({"errors": exc.problems}, self.stdout, indent=1, ensure_ascii=False)
            self.stdout.write("")
            raise CommandError(f"Nothing was computed: {exc}") from None
        json.dump(answer, self.stdout, indent=1, ensure_ascii=False)
        self.stdout.write("")
