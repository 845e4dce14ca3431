"""templates/includes/field.html, the one field markup of every form: a single checkbox inside its label, a list of
checkboxes (a filter's several states) under its label, hidden fields bare, errors announced."""

from __future__ import annotations

from django import forms
from django.template.loader import render_to_string


class Sample(forms.Form):
    states = forms.MultipleChoiceField(choices=[("synced", "Synced"), ("migrated", "Migrated")],
                                       widget=forms.CheckboxSelectMultiple, label="State", required=False)
    confirm = forms.BooleanField(label="I have checked the plan")
    batch = forms.CharField(widget=forms.HiddenInput, required=False)


def render(field) -> str:
    return render_to_string("includes/field.html", {"field": field})


def test_a_list_of_checkboxes_keeps_its_label_above_and_a_single_one_sits_inside_its_label() -> None:
    form = Sample(data={"batch": "7"})
    states = render(form["states"])
    assert states.index(">State</label>") < states.index('value="synced"') and "field-check" not in states
    confirm = render(form["confirm"])
    assert 'class="field field-check"' in confirm
    assert confirm.index("<label") < confirm.index('type="checkbox"') < confirm.index("I have checked the plan</label>")
    assert 'role="alert"' in confirm  # required, not given
    hidden = render(form["batch"])
    assert hidden.strip().startswith('<input type="hidden"') and "<label" not in hidden
