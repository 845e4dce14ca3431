from django import forms


class ScanForm(forms.Form):
    """Starting a scan takes no settings: the sync OUs and the tenant are the scope (a form for its CSRF token)."""


class PlanForm(forms.Form):
    selection = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any finding id may be posted; the service plans only those that exist and carry an AD fix.
        posted = self.data.getlist("selection") if hasattr(self.data, "getlist") else self.data.get("selection", [])
        self.fields["selection"].choices = [(v, v) for v in posted if str(v).isdigit()][:1000]
