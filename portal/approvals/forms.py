"""The sign-off forms of every approval in the portal (the same fields, labels and defaults everywhere)."""

from __future__ import annotations

from django import forms


class ApproveForm(forms.Form):
    valid_hours = forms.FloatField(label="Valid for (hours)", min_value=0.1, required=False,
                                   help_text="The run refuses to start on this approval after that time.")
    note = forms.CharField(label="Note", max_length=500, required=False)
    confirm = forms.BooleanField(label="I have read the plan and every check, and approve exactly this", required=True)

    @classmethod
    def with_defaults(cls) -> ApproveForm:
        from django.conf import settings
        return cls(initial={"valid_hours": settings.DL_APPROVAL_DEFAULT_VALID_HOURS})


class RejectForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=500, required=True,
                             widget=forms.TextInput(attrs={"placeholder": "Why it may not go ahead"}))
