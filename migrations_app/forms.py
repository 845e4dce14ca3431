"""Forms of the DL migration pages. They collect; the services judge (check_address, check_options)."""

from __future__ import annotations

from typing import Any

from django import forms

# The sign-off forms are shared by every area (portal/approvals); the DL pages import them from here too.
from portal.approvals.forms import ApproveForm, PinnedApproveForm, RejectForm  # noqa: F401

from .choices import BatchMethod
from .models import MigrationSettings

GROUP_TYPE_CHOICES = [("", "Keep the on-premises type"), ("Distribution", "Distribution"),
                      ("Security", "Security")]
METHOD_CHOICES = [("recreate", "Recreate as a cloud list"),
                  ("in_place", "In place: hand its source of authority to the cloud")]
OPTION_FIELDS = ("method", "skip_nested_group_check", "hybrid_mail_flow", "keep_original", "group_type",
                 "routing_domain", "name_prefix", "name_suffix", "remove_twin_via_graph", "allow_centralized_mail_flow",
                 "non_sync_ou")


class PreflightForm(forms.Form):
    mail = forms.CharField(label="Primary SMTP address of the list", max_length=400,
                           widget=forms.TextInput(attrs={"placeholder": "sales-team@contoso.com",
                                                         "autocomplete": "off", "spellcheck": "false"}))
    method = forms.ChoiceField(
        choices=METHOD_CHOICES, initial="recreate", widget=forms.RadioSelect, label="Method", required=False,
        help_text="In place keeps the cloud list's object id, addresses, members and permissions (Entra Connect "
                  "2.5.76.0 or later); the preflight recommends one for this list and says why.")
    hybrid_mail_flow = forms.BooleanField(
        required=False, label="Hybrid mail flow",
        help_text="Create a dynamic list on-premises that forwards to the cloud list, so on-premises senders "
                  "still reach it.")
    keep_original = forms.BooleanField(
        required=False, label="Keep the original group",
        help_text="Rename it with '!', clear its Exchange attributes and keep it (otherwise it is deleted).")
    skip_nested_group_check = forms.BooleanField(
        required=False, label="Skip the nested group check",
        help_text="Child lists stay on-premises and are added as members of the cloud list at the end.")
    group_type = forms.ChoiceField(choices=GROUP_TYPE_CHOICES, required=False, label="Group type in the cloud")
    routing_domain = forms.CharField(required=False, max_length=300, label="Custom routing domain",
                                     help_text="Empty: the tenant's mail.onmicrosoft.com domain.")
    name_prefix = forms.CharField(required=False, max_length=100, label="Name prefix")
    name_suffix = forms.CharField(required=False, max_length=100, label="Name suffix")
    remove_twin_via_graph = forms.BooleanField(
        required=False, label="Remove the cloud twin through Graph",
        help_text="Delete the synced twin through Graph instead of only waiting for the sync to remove it.")
    allow_centralized_mail_flow = forms.BooleanField(
        required=False, label="Allow centralized mail flow",
        help_text="Proceed although an outbound connector routes all mail through on-premises.")
    non_sync_ou = forms.CharField(required=False, max_length=1024, label="Non-sync OU",
                                  help_text="Empty: the configured non-sync OU.")

    @classmethod
    def initial_from_settings(cls, mail: str = "") -> dict[str, Any]:
        current = MigrationSettings.current()
        return {"mail": mail, "hybrid_mail_flow": current.default_hybrid_mail_flow,
                "keep_original": current.default_keep_original}

    def options(self) -> dict[str, Any]:
        data = self.cleaned_data
        options = {name: (data.get(name).strip() if isinstance(data.get(name), str) else bool(data.get(name)))
                   for name in OPTION_FIELDS}
        options["method"] = options.get("method") or "recreate"  # forms without the choice (batches) recreate
        return options


class AddressForm(forms.Form):
    new_address = forms.CharField(label="New primary SMTP address", max_length=400)
    new_alias = forms.CharField(label="New alias (optional)", max_length=100, required=False)
    confirm = forms.BooleanField(label="Change the address in both directories now", required=True)


class RestoreForm(forms.Form):
    """A restore takes the list out of Exchange Online: the person types the list's address to go on."""

    confirm_mail = forms.CharField(label="Type the list's address to confirm", max_length=400)

    def matches(self, mail: str) -> bool:
        return self.is_valid() and self.cleaned_data["confirm_mail"].strip().lower() == mail.lower()


class SettingsForm(forms.Form):
    require_approval_for_single = forms.BooleanField(
        required=False, label="Single migrations need an Approver's sign-off",
        help_text="When on, the confirm button requests approval; an Approver (not the requester) starts it.")
    default_hybrid_mail_flow = forms.BooleanField(required=False, label="Hybrid mail flow on by default")
    default_keep_original = forms.BooleanField(required=False, label="Keep the original group by default")


def option_labels(options: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The options a person chose, as the preflight form names them: ("Keep the original group", "Yes")."""
    fields = PreflightForm.base_fields
    out = []
    for key, value in sorted((options or {}).items()):
        if not value:
            continue
        label = str(fields[key].label) if key in fields else key.replace("_", " ").capitalize()
        out.append((label, "Yes" if value is True else str(value)))
    return out


class BatchForm(PreflightForm):
    """A batch's name, window, method rule and options: the options as for one list (the preflight form's)."""

    mail = None
    method = forms.ChoiceField(
        choices=BatchMethod.choices, initial=BatchMethod.RECOMMENDED, widget=forms.RadioSelect,
        label="Method of each list", required=False,
        help_text="The recommended one is judged per list by its preflight (sync client, list type, nesting, "
                  "dynamic membership, earlier recreate traces) and shown with its reasons; you can still choose "
                  "another for any list in the batch's list table.")
    name = forms.CharField(label="Batch name", max_length=200,
                           widget=forms.TextInput(attrs={"placeholder": "Sales lists, Saturday window"}))
    window_start = forms.DateTimeField(
        required=False, label="Window start (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: the batch starts as soon as it is scheduled.")
    window_end = forms.DateTimeField(
        required=False, label="Window end (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="No new list starts after it; lists running then finish or roll back as usual.")

    field_order = ["name", "window_start", "window_end"]

    @classmethod
    def initial_for(cls, batch) -> dict[str, Any]:
        return {"name": batch.name, "window_start": batch.window_start, "window_end": batch.window_end,
                **(batch.options or {}), "method": batch.method}

    def batch_method(self) -> str:
        return self.cleaned_data.get("method") or BatchMethod.RECOMMENDED

    def options(self) -> dict[str, Any]:
        """The options every list shares; the method is the batch's rule (:meth:`batch_method`), and a list's
        own is set per list, so the options carry the rule's method only when it is one for every list."""
        options = super().options()
        options["method"] = self.batch_method() if self.batch_method() != BatchMethod.RECOMMENDED else "recreate"
        return options


class BatchUploadForm(forms.Form):
    file = forms.FileField(label="CSV of list addresses",
                           help_text="One primary SMTP address per row; a header 'address' (or mail, "
                                     "PrimarySmtpAddress) is optional; commas or semicolons.")


class BatchApproveForm(PinnedApproveForm):
    """A batch's approval pins the hash of every list's plan the approver read."""
