"""After the point of no return: mail routing to the cloud list, on-premises dependencies, child lists, the final
sync and the report."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors.ad import recipients

from ..choices import BackupKind
from .common import STAMP


class FinishSteps:
    """Mixed into MigrationProcess (process.py), whose helpers these steps use."""

    def _contact_address(self) -> tuple[str, str, str]:
        alias = str(self.first_attr("mailNickname") or self.cloud.get("Alias"))
        domain = self.m.mail.split("@", 1)[1]
        routing = self.options.routing_domain or self.cloud.get("routing_domain") or ""
        return f"{alias}-{STAMP}", f"{alias}-{STAMP}@{domain}", f"{alias}@{routing}"

    def step_routing_contact(self) -> None:
        directory = self.c.directory
        contact_alias, contact_mail, target = self._contact_address()
        existing = recipients.find_contact_by_address(directory, contact_mail)
        if existing is not None:
            self.save(contact_dn=existing.dn)
            self.log(f"The routing contact exists: {existing.dn}.")
            return
        dn = directory.create_contact(parent=self.group["ou"], name=contact_alias, display_name=contact_alias,
                                      alias=contact_alias, mail=contact_mail,
                                      attributes={"targetAddress": f"SMTP:{target}",
                                                  "msExchHideFromAddressLists": True,
                                                  "extensionAttribute1": STAMP,
                                                  "extensionAttribute2": self.m.mail})
        self.save(contact_dn=dn)
        self.log(f"Created the routing contact {contact_mail} → {target}.")

    def step_hybrid_mail_flow(self) -> None:
        if not self.options.hybrid_mail_flow:
            self.log("Hybrid mail flow not requested; on-premises senders reach the list through the contact only.")
            return
        self.enable_hybrid_mail_flow()

    def enable_hybrid_mail_flow(self) -> None:
        """Mail-enable the contact on-premises and create the dynamic list with the original name and
        addresses that expands to it (shared with 'enable hybrid mail flow' after a migration)."""
        directory = self.c.directory
        onprem = self.c.onprem()
        contact_alias, contact_mail, _ = self._contact_address()
        onprem.update_recipient(self.m.contact_dn)
        existing = recipients.find_dynamic_list_by_address(directory, self.m.mail)
        if existing is None:
            name = str(self.first_attr("cn") or self.m.group_name)
            ddl = onprem.new_dynamic_distribution_group(
                name=name, alias=str(self.first_attr("mailNickname")),
                recipient_filter=exo.opath_eq("Alias", contact_alias),
                organizational_unit=self.group["ou"], recipient_container=self.group["ou"],
                primary_smtp_address=self.m.mail, display_name=str(self.first_attr("displayName") or name))
            dn = ddl.distinguished_name or ""
        else:
            dn = existing.dn
        # Never the tenant's onmicrosoft.com addresses: on-premises they would capture the mail the contact
        # sends to alias@<tenant>.mail.onmicrosoft.com and loop it back to this dynamic list.
        addresses = [f"SMTP:{self.m.mail}"] + [
            str(p) for p in self.group_attr("proxyAddresses")
            if str(p).lower() != f"smtp:{self.m.mail.lower()}" and (
                str(p)[:5].lower() == "x500:"
                or str(p)[:5].lower() == "smtp:" and not str(p).lower().endswith(".onmicrosoft.com"))]
        legacy = self.first_attr("legacyExchangeDN")
        if legacy and f"X500:{legacy}".lower() not in {a.lower() for a in addresses}:
            addresses.append(f"X500:{legacy}")
        onprem.set_dynamic_distribution_group(dn, changes={"EmailAddresses": addresses})
        self.save(dynamic_list_dn=dn)
        self.log(f"Hybrid mail flow: {self.m.mail} on-premises is the dynamic list {dn}, which expands to "
                 f"{contact_mail} and on to Exchange Online.")

    def step_onprem_dependencies(self) -> None:
        directory = self.c.directory
        contact = self.m.contact_dn
        deps = self.backup(BackupKind.ONPREM_DEPENDENCIES)
        original = self.current_group_dn()
        for attribute, dns in deps.items():
            for dn in dns:
                try:
                    if attribute == "member":
                        # The kept original stays a member where it was (permission nesting); mail goes
                        # through the contact.
                        directory.modify(dn, add={"member": [contact]})
                    elif attribute == "managedBy":
                        self.post_create_error("onprem_dependencies", f"{dn} is managed by the migrated list; "
                                               "a contact cannot manage it: choose a new manager", objects=[dn])
                        continue
                    elif attribute == "altRecipient":  # single-valued: forwarding now goes through the contact
                        directory.modify(dn, replace={attribute: contact})
                    else:
                        change: dict[str, Any] = {"add": {attribute: [contact]}}
                        if original:
                            change["delete"] = {attribute: [original]}
                        directory.modify(dn, **change)
                    self.log(f"{dn}: {attribute} now names the routing contact.")
                except (adc.ValueExists, adc.NoSuchValue):
                    continue  # done by an earlier, interrupted run
                except adc.AdError as exc:
                    self.post_create_error("onprem_dependencies", f"{dn} {attribute}: {exc}", objects=[dn])

    def step_child_lists(self) -> None:
        if not self.options.skip_nested_group_check:
            return
        children = [m for m in self.backup(BackupKind.ONPREM_MEMBERS)["members"]
                    if m["kind"] == "group" and m["mail"] and m["cloud_identity"]]
        for child in children:
            try:
                added = self.c.exchange.add_distribution_group_member(self.m.cloud_group_id,
                                                                      member=child["cloud_identity"],
                                                                      bypass_security_group_manager_check=True)
                self.log(f"Child list {child['mail']} {'added to' if added else 'already in'} the cloud list "
                         "(it stays on-premises).")
            except exo.ExchangeError as exc:
                self.post_create_error("child_lists", f"add {child['mail']}: {exc}", objects=[child["dn"]])

    def step_final_sync(self) -> None:
        if self.sync_gate is not None:  # published by the batch's next shared sync, not waited for
            self.sync_gate.defer(runner=self.runner, why="to publish the routing contact and the changed "
                                                         "dependencies")
            return
        self._start_sync("to publish the routing contact and the changed dependencies")
        # The report reads the end state: wait for the cycle, so it describes what the sync produced.
        if not self.c.sync.wait_until_idle(timeout=settings.DL_DELETION_TIMEOUT_SECONDS,
                                           poll=min(2.0, settings.DL_DELETION_POLL_SECONDS)):
            self.runner.warning("The final sync cycle is still running; the report may predate it.")

    def step_report(self) -> None:
        exchange = self.c.exchange
        # The finalize step's read of this run: the steps since change other objects, on-premises objects and
        # the membership (read below), never the list's own properties. Resumed, the run reads it again.
        final = getattr(self, "_finalized", None) or exchange.get_distribution_group(self.m.cloud_group_id)
        members = {(r.primary_smtp_address or "").lower() for r in
                   exchange.iter_distribution_group_members(self.m.cloud_group_id)}
        expected = {i.lower() for i in self._member_identities()}
        if self.options.skip_nested_group_check:
            expected |= {m["cloud_identity"].lower() for m in self.backup(BackupKind.ONPREM_MEMBERS)["members"]
                         if m["kind"] == "group" and m["mail"] and m["cloud_identity"]}
        missing = sorted(expected - members)
        cloud_before = {a.lower() for a in self.cloud.get("EmailAddresses") or []}
        now = {a.lower() for a in final.email_addresses}
        lost_addresses = sorted(a for a in cloud_before if a not in now and a.startswith(("smtp:", "x500:")))
        comparison = []
        for prop in ("ModerationEnabled", "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled",
                     "MemberJoinRestriction", "MemberDepartRestriction"):
            before, after = self.cloud.get(prop), final.raw.get(prop)
            comparison.append({"property": prop, "before": before, "after": after, "same": before == after})
        for prop in ("ManagedBy", "AcceptMessagesOnlyFromSendersOrMembers", "RejectMessagesFromSendersOrMembers",
                     "ModeratedBy", "BypassModerationFromSendersOrMembers", "GrantSendOnBehalfTo"):
            before = sorted(str(v).lower() for v in self.cloud.get(prop) or [])
            after = sorted(str(v).lower() for v in final.raw.get(prop) or [])
            comparison.append({"property": prop, "before": len(before), "after": len(after),
                               "same": before == after})
        if missing:
            self.post_create_error("report", f"{len(missing)} member(s) missing from the cloud list", objects=missing)
        if lost_addresses:
            self.post_create_error("report", "addresses of the cloud twin missing on the new list",
                                   objects=lost_addresses)
        for row in comparison:
            if not row["same"]:
                self.runner.warning(f"{row['property']} differs from the cloud twin: {row['before']} → {row['after']}")
        report = {
            "list": {"name": final.name, "primary_smtp_address": final.primary_smtp_address,
                     "addresses": list(final.email_addresses), "guid": final.guid,
                     "external_directory_object_id": final.external_directory_object_id,
                     "is_dir_synced": final.is_dir_synced},
            "members": {"expected": len(expected), "found": len(members), "missing": missing[:100]},
            "addresses_lost": lost_addresses, "comparison": comparison,
            "contact_dn": self.m.contact_dn, "dynamic_list_dn": self.m.dynamic_list_dn,
            # Under its real DN: kept, it was renamed with '!' (and moved back to its OU).
            "original": {"dn": (self.current_group_dn() if self.options.keep_original else None) or self.group["dn"],
                         "kept": self.options.keep_original, "dn_before": self.group["dn"]},
            "post_create_errors": self.post_create_errors,
        }
        self.save(report=report)
        self.log(f"Report: {len(members)} members in the cloud list, {len(final.email_addresses)} addresses, "
                 f"{sum(1 for r in comparison if r['same'])}/{len(comparison)} settings as before.")
