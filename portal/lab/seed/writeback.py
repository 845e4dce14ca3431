"""Group writeback v2: cloud groups written back to the writeback OU, with the naming cases."""

from __future__ import annotations

from typing import Any

from portal.connectors.ad import NewEntry, child_dn
from portal.lab import layout

from .common import _alias_text
from .descriptions import _DESCRIPTIONS
from .manifest import ScenarioObject
from .values import GROUP_CLASSES, GROUP_UNIVERSAL_DISTRIBUTION, GROUP_UNIVERSAL_SECURITY


class WritebackGroupCases:
    """Mixed into the plan's builder (plan.py), whose naming and recipient helpers it uses."""

    def _writeback_groups(self, user_dns: list[str]) -> list[NewEntry]:
        parent = layout.writeback_ou(self.base)
        rng = self.member_rng
        shared_tail = self.object_id()[-12:]
        specs: list[tuple[str, str, str, str | None]] = [
            # (displayName, kind, case, forced last 12 characters of the object id)
            ("Project Phoenix", "m365", "ordinary", None),
            ("Cloud Security Reviewers", "security", "ordinary", None),
            # its cloud group was deleted: the cloud seed leaves it without a twin (a plan lists it apart)
            ("Sales Enablement", "m365", "no_cloud_twin", None),
            ('#1 Sales, EMEA + Partners <Core>; "Q1" \\ R&D=Go', "m365", "dn_escaping", None),
            ("Finance Team", "security", "case_collision", shared_tail),
            ("FINANCE TEAM", "security", "case_collision", shared_tail),
            ("Cloud Only Security Group for the Extended Global Leadership Team and Advisors", "security",
             "long_display_name", None),
        ]
        specs += [(f"Cloud Project {n:03d}", "m365" if n % 2 else "security", "ordinary", None)
                  for n in range(1, self.users // 2_000 + 1)]
        entries: list[NewEntry] = []
        objects: list[ScenarioObject] = []
        for display, kind, case, tail in specs:
            object_id = self.object_id()
            if tail:
                object_id = object_id[:-12] + tail
            cn = f"Group_{object_id}"
            attrs: dict[str, Any] = {
                "sAMAccountName": cn,
                "groupType": GROUP_UNIVERSAL_DISTRIBUTION if kind == "m365" else GROUP_UNIVERSAL_SECURITY,
                "displayName": display,
                "msDS-ExternalDirectoryObjectId": cn,
                "member": rng.sample(user_dns, 3),
            }
            if kind == "m365":
                alias = self.unique_alias(_alias_text(display)[:40] or "group")
                mail = f"{alias}@{layout.PRIMARY_DOMAIN}"
                attrs.update({"mail": mail, "mailNickname": alias,
                              "proxyAddresses": [f"SMTP:{mail}", f"smtp:{alias}@{layout.TENANT_DOMAIN}"]})
            entry = NewEntry(child_dn(parent, "CN", cn), GROUP_CLASSES, attrs)
            entries.append(entry)
            facts = {
                "object_id": object_id, "display_name": display, "kind": kind, "case": case,
                "current_cn": cn, "cloud_display_name_cn": f"{display}_{object_id[-12:]}", "mail": attrs.get("mail"),
                "attributes": {"msDS-ExternalDirectoryObjectId": [cn], "displayName": [display],
                               "groupType": [attrs["groupType"]]},
            }
            objects.append(ScenarioObject(entry.dn, facts))
        self.add_scenario("written_back_groups", _DESCRIPTIONS["written_back_groups"], objects)
        for case, key in (("dn_escaping", "writeback_name_needs_dn_escaping"),
                          ("case_collision", "writeback_names_collide_in_case"),
                          ("long_display_name", "writeback_display_name_over_64")):
            self.add_scenario(key, _DESCRIPTIONS[key], (o for o in objects if o.facts["case"] == case))
        return entries
