from django import forms


class FaultForm(forms.Form):
    throttle = forms.IntegerField(label="Answer the next N calls with 429", min_value=0, max_value=1000, initial=0)
    retry_after = forms.IntegerField(label="Retry-After (seconds)", min_value=1, max_value=120, initial=2)
    unavailable = forms.IntegerField(label="then N calls with 503", min_value=0, max_value=1000, initial=0)
    latency_ms = forms.IntegerField(label="Added latency per call (ms)", min_value=0, max_value=10_000, initial=0)
    scope = forms.ChoiceField(label="Which calls", choices=[("all", "All"), ("graph", "Graph"),
                                                           ("exchange", "Exchange Online"),
                                                           ("powershell", "PowerShell endpoints")])


class SyncWizardForm(forms.Form):
    """What the Entra Connect wizard would set on the sync server, for rehearsing the writeback rename."""

    staging_mode = forms.BooleanField(label="Staging mode", required=False)
    sync_cycle_enabled = forms.BooleanField(label="Scheduler runs cycles (SyncCycleEnabled)", required=False)
    group_writeback = forms.BooleanField(label="Group writeback", required=False)
    writeback_display_name = forms.BooleanField(
        label="Writeback Group Distinguished Name with cloud Display Name", required=False)
    target_ou = forms.CharField(label="Group writeback OU (empty: the lab's)", max_length=1024, required=False)

    def clean_target_ou(self):
        from portal.connectors.ad import InvalidDn, parse_dn

        value = (self.cleaned_data.get("target_ou") or "").strip()
        if value:
            try:
                return str(parse_dn(value))
            except InvalidDn as exc:
                raise forms.ValidationError(f"Not a distinguished name: {exc}") from None
        return ""
