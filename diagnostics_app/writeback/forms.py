"""Forms of the writeback rename pages. They collect; the services judge."""

from __future__ import annotations

from django import forms

# The approval forms are the portal's: one wording of what an approver signs, one validity rule.
from portal.approvals import ApproveForm, PinnedApproveForm, RejectForm

__all__ = ["ApproveForm", "CompareForm", "ConfirmStepForm", "PinnedApproveForm", "RejectForm", "StartForm"]


class StartForm(forms.Form):
    """Starting a plan or a verification takes no options: the form carries the CSRF token."""


class ConfirmStepForm(forms.Form):
    note = forms.CharField(label="Note (what you saw)", max_length=500, required=False)
    confirm = forms.BooleanField(label="I did this step and checked what it asks", required=True)


class CompareForm(forms.Form):
    """Which earlier version the plan page's diff is taken against (a GET form: it reads, it changes nothing)."""

    compare = forms.TypedChoiceField(
        label="Compare with", coerce=int, choices=(),
        error_messages={"invalid_choice": "v%(value)s is not an earlier version of this plan: "
                                          "choose one from the list."})

    def __init__(self, *args, earlier=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["compare"].choices = [
            (p.version, f"v{p.version} · {p.created_at:%Y-%m-%d %H:%M} · {p.get_status_display()}") for p in earlier]
