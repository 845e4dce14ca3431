"""Widgets are written in Python (portal/form_renderer.py): the same HTML, byte for byte, as Django's widget templates
write, for every widget of the filter and report forms the list pages show and for the cases each template has
(escaping, safe values, attributes true and false, empty values, option groups, checkboxes with and without an id);
and without a widget template rendered, which is what made a filter form a quarter of a page's time."""

from __future__ import annotations

import uuid

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates, get_default_renderer
from django.utils import timezone
from django.utils.safestring import mark_safe

from diagnostics_app.addresses.filtersets import AddressFindingFilterSet
from diagnostics_app.mfa.filtersets import MfaUserRowFilterSet
from diagnostics_app.mfa.forms import PolicyReadinessForm, ReadinessForm, SnapshotForm
from diagnostics_app.models import AddressFinding, AddressScan, MfaSnapshot, MfaUserRow
from migrations_app.filtersets import DistributionListFilterSet
from migrations_app.models import DistributionList
from portal.audit.filtersets import AuditEventFilterSet
from portal.audit.models import AuditEvent
from portal.form_renderer import PortalFormRenderer
from portal.jobs.filtersets import JobFilterSet
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db

GROUPED = [("Fruit <&>", [("apple", "Apple"), ("pear", mark_safe("<b>Pear</b>"))]), ("plain", "Plain \"q\"")]


class Variety(forms.Form):
    text = forms.CharField(required=False, widget=forms.TextInput(
        attrs={"placeholder": "a \"b\" <c>", "autofocus": True, "disabled": False, "data-n": 3}))
    hidden = forms.CharField(required=False, widget=forms.HiddenInput)
    number = forms.IntegerField(required=False)
    search = forms.CharField(required=False, widget=forms.TextInput(attrs={"type": "search"}))
    email = forms.EmailField(required=False)
    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=True))
    when = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    flag = forms.BooleanField(required=False)
    choice = forms.ChoiceField(required=False, choices=GROUPED)
    choices = forms.MultipleChoiceField(required=False, choices=GROUPED)
    ternary = forms.NullBooleanField(required=False)
    boxes = forms.MultipleChoiceField(required=False, choices=GROUPED, widget=forms.CheckboxSelectMultiple)
    boxes_no_id = forms.MultipleChoiceField(required=False, choices=[("a", "A & B")],
                                            widget=forms.CheckboxSelectMultiple(attrs={"class": "inline <x>"}))
    radios = forms.ChoiceField(required=False, choices=GROUPED, widget=forms.RadioSelect)


VARIETY_DATA = {"text": "x < y & \"z\"", "hidden": mark_safe("<i>safe</i>"), "number": "12", "search": "",
                "email": "a@b.example", "secret": "s&s", "when": "2026-01-02", "flag": "on", "choice": "pear",
                "choices": ["apple", "plain"], "ternary": "true", "boxes": ["pear"], "boxes_no_id": ["a"],
                "radios": "plain"}


def _forms() -> list[tuple[str, forms.Form]]:
    snapshot = MfaSnapshot.objects.create(taken_at=timezone.now(), total_users=1, departments=["Sales & <Ops>", "R&D"],
                                          groups={"g1": "Group <1>", "g2": "Admins"})
    MfaUserRow.objects.create(snapshot=snapshot, user_id="u", upn="u@x.example", department="R&D")
    scan = AddressScan.objects.create(status="complete", findings_total=1)
    AddressFinding.objects.create(scan=scan, key="k", first_seen=timezone.now(), dn="CN=a,OU=<Users>,DC=x",
                                  ou="OU=<Users>,DC=x", attribute="weirdAttribute", value="v", rule="idfix",
                                  severity="error")
    DistributionList.objects.create(guid=uuid.uuid4(), inventoried_at=timezone.now(), name="L",
                                    dn="CN=L,OU=Lists & more,DC=x", ou="OU=Lists & more,DC=x")
    Job.objects.create(kind="connectivity_check", name="j")
    AuditEvent.objects.create(action="job.start", target="job:1")
    out: list[tuple[str, forms.Form]] = [("variety", Variety()), ("variety bound", Variety(VARIETY_DATA)),
                                         ("variety invalid", Variety({"number": "<x>", "email": "no"}))]
    mfa = {"q": "<u>", "classification": "not_registered", "department": "R&D", "group": "g1", "admin": "true",
           "method": "fido2", "enabled": "false"}
    for data in (None, mfa):
        out.append((f"mfa report {data}", MfaUserRowFilterSet(data, queryset=MfaUserRow.objects.all(),
                                                              snapshot=snapshot).form))
        out.append((f"findings {data}", AddressFindingFilterSet(data and {"ou": "OU=<Users>,DC=x", "q": "<"},
                                                                queryset=scan.findings.all(), scan=scan).form))
        out.append((f"dl inventory {data}", DistributionListFilterSet(
            data and {"state": ["synced", "migrated"], "kind": "security", "q": "a&b"},
            queryset=DistributionList.objects.all()).form))
        out.append((f"jobs {data}", JobFilterSet(data and {"status": ["running"], "q": "\"t\""},
                                                 queryset=Job.objects.all()).form))
        out.append((f"audit {data}", AuditEventFilterSet(data, queryset=AuditEvent.objects.all()).form))
        out.append((f"readiness {data}", ReadinessForm(data and {"group": "g1", "wave_max": "x"}, snapshot=snapshot)))
        out.append((f"policy readiness {data}", PolicyReadinessForm(data and {"group": "g2"}, snapshot=snapshot)))
        out.append((f"snapshot {data}", SnapshotForm(data and {"audit_days": "99"})))
    return out


def test_every_widget_is_written_as_djangos_templates_write_it():
    templates, portal = DjangoTemplates(), PortalFormRenderer()
    compared = 0
    for name, form in _forms():
        for field in form:
            form.renderer = templates
            expected = str(field)
            form.renderer = portal
            assert str(field) == expected, f"{name}: {field.name}"
            compared += 1
    assert compared > 60


def test_the_pages_widgets_render_no_widget_template(monkeypatch):
    rendered = []
    original = DjangoTemplates.render

    def render(self, template_name, context, request=None):
        rendered.append(template_name)
        return original(self, template_name, context, request=request)

    monkeypatch.setattr(DjangoTemplates, "render", render)
    assert isinstance(get_default_renderer(), PortalFormRenderer)
    for _name, form in _forms():
        for field in form:
            str(field)
    assert [name for name in rendered if name.startswith("django/forms/widgets/")] == []


def test_a_widget_template_of_an_app_is_rendered_by_its_template(monkeypatch):
    """An app overriding Django's select.html gets its template, not the writer of Django's."""
    renderer = PortalFormRenderer()

    class Origin:
        name = "/some/app/templates/django/forms/widgets/select.html"

    class Template:
        origin = Origin()

        def render(self, context, request=None):
            return "<app-select>"

    monkeypatch.setattr(PortalFormRenderer, "get_template", lambda self, name: Template())
    assert forms.Select(choices=[("a", "A")]).render("s", "a", renderer=renderer) == "<app-select>"
