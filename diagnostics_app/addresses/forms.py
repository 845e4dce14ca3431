import re

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


class ExplainForm(forms.Form):
    """The explainer's what-if values. Every field is optional text here: portal.addressing.explain checks them
    (the same checks as ``manage.py proxycalc``) and its messages are shown against the fields."""

    KINDS = (("user", "User"), ("group", "Group"), ("contact", "Contact"))
    RECIPIENTS = (("mailbox", "Exchange Online mailbox (licensed user)"),
                  ("mail_enabled", "Mail user, mail-enabled group or mail contact"),
                  ("not_mail_enabled", "Not a mail recipient"))
    area = {"rows": 3, "cols": 60, "spellcheck": "false"}

    kind = forms.ChoiceField(choices=KINDS, initial="user", label="Object type")
    recipient = forms.ChoiceField(choices=RECIPIENTS, initial="mailbox", label="In Exchange Online")
    userPrincipalName = forms.CharField(required=False, label="userPrincipalName")
    mail = forms.CharField(required=False, label="mail")
    mailNickname = forms.CharField(required=False, label="mailNickname")
    proxyAddresses = forms.CharField(required=False, label="proxyAddresses (one a line)",
                                     widget=forms.Textarea(attrs=area))
    targetAddress = forms.CharField(required=False, label="targetAddress")
    verified_domains = forms.CharField(required=False, label="Verified domains of the tenant (comma-separated)")
    initial_domain = forms.CharField(required=False, label="Initial domain (*.onmicrosoft.com)")
    cloud_mailNickname = forms.CharField(required=False, label="mailNickname in the cloud now")
    cloud_proxyAddresses = forms.CharField(required=False, label="proxyAddresses in the cloud now (one a line)",
                                           widget=forms.Textarea(attrs=area))
    in_use = forms.CharField(required=False, label="Addresses other objects already hold (one a line)",
                             widget=forms.Textarea(attrs=area))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("userPrincipalName", "mail", "mailNickname", "targetAddress", "verified_domains",
                     "initial_domain", "cloud_mailNickname"):
            self.fields[name].widget.attrs.update({"spellcheck": "false", "autocomplete": "off", "size": 40})

    @staticmethod
    def initial_from(data: dict) -> dict:
        """Form values from the explainer's input shape (an object's prefill)."""
        cloud = data.get("cloud") or {}
        values = {k: v for k, v in data.items() if k not in ("cloud", "proxyAddresses", "verified_domains")}
        values["proxyAddresses"] = "\n".join(data.get("proxyAddresses") or [])
        values["verified_domains"] = ", ".join(data.get("verified_domains") or [])
        values["cloud_mailNickname"] = cloud.get("mailNickname") or ""
        values["cloud_proxyAddresses"] = "\n".join(cloud.get("proxyAddresses") or [])
        return values

    def explain_input(self) -> dict:
        """The explainer's input shape from the submitted text (raw, not yet checked)."""
        d = self.data

        def lines(name: str) -> list[str]:
            return [v for v in str(d.get(name) or "").splitlines() if v.strip()]

        cloud = {"mailNickname": d.get("cloud_mailNickname") or "", "proxyAddresses": lines("cloud_proxyAddresses")}
        return {
            "kind": d.get("kind") or "user", "recipient": d.get("recipient") or "mailbox",
            **{k: d.get(k) or "" for k in ("userPrincipalName", "mail", "mailNickname", "targetAddress",
                                           "initial_domain")},
            "proxyAddresses": lines("proxyAddresses"),
            "verified_domains": [v for v in re.split(r"[\s,;]+", str(d.get("verified_domains") or "")) if v],
            "cloud": cloud if any(cloud.values()) else {},
            "in_use": lines("in_use"),
        }

    def show_problems(self, problems: dict[str, str]) -> None:
        for key, message in problems.items():
            field = {"cloud.mailNickname": "cloud_mailNickname", "cloud.proxyAddresses": "cloud_proxyAddresses",
                     "cloud.mail": None, "cloud": None, "input": None}.get(key, key)
            self.add_error(field if field in self.fields else None, f"{key} {message}")
