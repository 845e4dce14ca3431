from django import forms


class FaultForm(forms.Form):
    throttle = forms.IntegerField(label="Answer the next N calls with 429", min_value=0, max_value=1000, initial=0)
    retry_after = forms.IntegerField(label="Retry-After (seconds)", min_value=1, max_value=120, initial=2)
    unavailable = forms.IntegerField(label="then N calls with 503", min_value=0, max_value=1000, initial=0)
    latency_ms = forms.IntegerField(label="Added latency per call (ms)", min_value=0, max_value=10_000, initial=0)
    scope = forms.ChoiceField(label="Which calls", choices=[("all", "All"), ("graph", "Graph"),
                                                           ("exchange", "Exchange Online"),
                                                           ("powershell", "PowerShell endpoints")])
