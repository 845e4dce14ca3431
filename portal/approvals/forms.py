"""The sign-off forms of every approval in the portal (the same fields, labels, defaults and messages everywhere)."""

from __future__ import annotations

from datetime import timedelta

from django import forms


class ApproveForm(forms.Form):
    valid_hours = forms.FloatField(label="Valid for (hours)", min_value=0.1, required=False,
                                   help_text="The run refuses to start on this approval after that time.")
    note = forms.CharField(label="Note", max_length=500, required=False)
    confirm = forms.BooleanField(label="I have read the plan and every check, and approve exactly this", required=True)

    @classmethod
    def with_defaults(cls, **initial) -> ApproveForm:
        from django.conf import settings
        return cls(initial={"valid_hours": settings.DL_APPROVAL_DEFAULT_VALID_HOURS, **initial})

    @property
    def valid_for(self) -> timedelta | None:
        """The validity the approver chose (None: the configured default); only on a valid form."""
        hours = self.cleaned_data.get("valid_hours")
        return timedelta(hours=hours) if hours else None

    def problem(self) -> str:
        """What the person must correct, for an invalid form."""
        if "confirm" in self.errors:
            return "Tick the confirmation that you read the plan and every check. Nothing was changed."
        return "The approval's validity must be a positive number of hours. Nothing was changed."


class PinnedApproveForm(ApproveForm):
    """An approval that also sends the hash of what the approver was shown: a request that changed since the page
    was read cannot be signed blind."""

    plan_hash = forms.CharField(widget=forms.HiddenInput, max_length=64)


class RejectForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=500, required=True,
                             widget=forms.TextInput(attrs={"placeholder": "Why it may not go ahead"}))

    @property
    def reason_given(self) -> str:
        """The reason, or "" (the service then asks for one): call after is_valid()."""
        return self.cleaned_data.get("reason", "") if self.is_valid() else ""
