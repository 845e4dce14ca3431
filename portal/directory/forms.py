from django import forms

KIND_CHOICES = [("user", "Users"), ("group", "Groups"), ("contact", "Contacts")]


class DirectorySearchForm(forms.Form):
    q = forms.CharField(
        label="Name, surname, mail, alias or any address (or part of it)", max_length=256, strip=True,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. sales, j.smith@contoso.com",
                                      "autofocus": True}))
    kinds = forms.MultipleChoiceField(label="Kinds", choices=KIND_CHOICES, required=False,
                                      widget=forms.CheckboxSelectMultiple)
    page = forms.IntegerField(min_value=1, max_value=1000, required=False)

    def clean_kinds(self):
        return self.cleaned_data["kinds"] or [value for value, _ in KIND_CHOICES]


class DnForm(forms.Form):
    dn = forms.CharField(label="Distinguished name", max_length=8192)
