from django import forms


class ScanForm(forms.Form):
    """Starting a scan takes no settings: the sync OUs and the tenant are the scope (a form for its CSRF token)."""
