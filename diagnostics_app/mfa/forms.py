from django import forms


class SnapshotForm(forms.Form):
    """The snapshot's settings: all optional (the button alone takes a snapshot with the defaults);
    the page shows them in an "Advanced" section for the admin who wants to change them."""

    audit_days = forms.IntegerField(min_value=1, max_value=30, initial=30, required=False,
                                    label="Audit days to read",
                                    help_text="Entra ID keeps the directory audit for 30 days (7 without P1/P2).")
    method_read_limit = forms.IntegerField(min_value=0, max_value=100_000, initial=2_000, required=False,
                                           label="Most users whose methods are read one by one")
    fallback_limit = forms.IntegerField(min_value=0, max_value=100_000, initial=5_000, required=False,
                                        label="Without a premium licence: users to read")
    full_audit = forms.BooleanField(required=False, initial=False, label="Read the whole audit window again",
                                    help_text="A snapshot reads the audit only since the last one and keeps the rest "
                                              "from earlier snapshots. Tick to read every day of the window again.")

    def params(self) -> dict[str, int | bool]:
        """The cleaned values, each left empty replaced by its default."""
        return {name: (self.cleaned_data.get(name) if self.cleaned_data.get(name) is not None else field.initial)
                for name, field in self.fields.items()}


class ReadinessForm(forms.Form):
    group = forms.ChoiceField(required=False, label="Policy targets",
                              help_text="The group a conditional access policy requiring MFA will include.")
    wave_by = forms.ChoiceField(choices=(("department", "Department"), ("group", "Group")), initial="department",
                                required=False, label="Stage the waves by")
    wave_max = forms.IntegerField(min_value=1, max_value=100_000, required=False, label="Most users in one wave",
                                  help_text="Larger departments or groups are split into waves of at most this "
                                            "many users; each wave can become a security group.")

    def __init__(self, *args, snapshot=None, **kwargs):
        super().__init__(*args, **kwargs)
        groups = sorted((snapshot.groups if snapshot else {}).items(), key=lambda g: g[1].lower())
        self.fields["group"].choices = [("", "The whole tenant"), *groups]


HYPOTHETICAL = "hypothetical"
DEMANDS = (("mfa", "Require multifactor authentication (grant control)"),
           ("00000000-0000-0000-0000-000000000002", "Authentication strength: Multifactor authentication"),
           ("00000000-0000-0000-0000-000000000003", "Authentication strength: Passwordless MFA"),
           ("00000000-0000-0000-0000-000000000004", "Authentication strength: Phishing-resistant MFA"))


class PolicyReadinessForm(forms.Form):
    """An existing policy (report-only, disabled, or enabled), or a hypothetical one: targets and demand."""

    policy = forms.ChoiceField(required=False, label="Policy",
                               help_text="An existing policy, as if it were enabled; or a hypothetical one below.")
    group = forms.ChoiceField(required=False, label="Hypothetical policy: targets")
    demand = forms.ChoiceField(choices=DEMANDS, required=False, initial="mfa", label="Hypothetical policy: demand")

    def __init__(self, *args, snapshot=None, policies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].choices = [(HYPOTHETICAL, "A hypothetical policy (targets and demand below)"),
                                         *[(str(p.pk), f"{p.display_name} ({p.state_label})") for p in policies]]
        groups = sorted((snapshot.groups if snapshot else {}).items(), key=lambda g: g[1].lower())
        self.fields["group"].choices = [("", "The whole tenant"), *groups]


class WaveRequestForm(forms.Form):
    """The readiness result the requester looked at, and the hash of the waves the page showed."""

    snapshot = forms.IntegerField(widget=forms.HiddenInput)
    group = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    wave_by = forms.ChoiceField(choices=(("department", "Department"), ("group", "Group")), widget=forms.HiddenInput)
    wave_max = forms.IntegerField(min_value=1, max_value=100_000, widget=forms.HiddenInput)
    plan_hash = forms.CharField(max_length=64, widget=forms.HiddenInput)
