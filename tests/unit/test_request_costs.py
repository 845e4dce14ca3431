"""What every request pays besides its page's own work: the person's roles and permissions in one statement, read
afresh at every request (a removed role takes effect at the next one); dates of table cells written without parsing
the format per cell, and ``{{ value }}`` of texts and whole numbers without Django's detours, the same text."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.template import Context, Template
from django.template import base as template_base
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy

from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.models import AddressFinding, AddressScan, MfaSnapshot, MfaUserRow
from portal.accounts.backends import LocalAccountBackend
from portal.accounts.selectors import access_of
from portal.accounts.sessions import SessionStore
from portal.tables import format_datetime
from portal.template_values import _django_value_text, value_text


@pytest.mark.postgres  # raw SQL on the request path: run on PostgreSQL too
def test_access_holds_the_roles_and_every_permission_django_would_give(make_user, django_user_model):
    user = make_user("two-roles", "Auditor", "Helpdesk")
    user.groups.add(Group.objects.create(name="Not a portal role"))
    user.user_permissions.add(Permission.objects.get(codename="unlock_sign_in"))
    fresh = django_user_model.objects.get(pk=user.pk)
    access = access_of(fresh)
    assert access.roles == ("Helpdesk", "Auditor")  # groups in the order they were made; other groups are no role
    assert set(access.permissions) == ModelBackend().get_all_permissions(django_user_model.objects.get(pk=user.pk))
    assert "accounts.unlock_sign_in" in access.permissions
    assert fresh.get_all_permissions() == set(access.permissions)


def test_a_user_without_groups_or_permissions_holds_nothing(make_user, django_user_model):
    user = django_user_model.objects.get(pk=make_user("nobody").pk)
    assert access_of(user).roles == () and access_of(user).permissions == frozenset()
    assert not user.has_perm("jobs.view_job")


@pytest.mark.postgres  # raw SQL on the request path: run on PostgreSQL too
def test_a_removed_role_takes_effect_at_the_next_request(client, make_user):
    user = make_user("aud", "Auditor")
    client.force_login(user)
    assert client.get("/jobs/").status_code == 200
    user.groups.clear()
    assert client.get("/jobs/").status_code == 403
    user.groups.set(Group.objects.filter(name="Auditor"))
    page = client.get("/jobs/")
    assert page.status_code == 200 and "aud · Auditor" in page.content.decode()
    Group.objects.get(name="Auditor").permissions.remove(Permission.objects.get(codename="view_job"))
    assert client.get("/jobs/").status_code == 403


def test_permissions_and_roles_are_one_query_per_request(client, make_user, django_assert_num_queries):
    """ModelBackend asked two (user and group permissions) and the navigation a third (the roles)."""
    client.force_login(make_user("aud2", "Auditor"))
    client.get("/jobs/")
    with django_assert_num_queries(9) as queries:  # session, user, access, the jobs list's own, the navigation's
        assert client.get("/jobs/").status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum("auth_permission" in q for q in sql) == 1 and not any('FROM "auth_group"' in q for q in sql), sql


BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
FORMATS = ["Y-m-d H:i:s T", "Y-m-d H:i T", "d.m.Y", r"\Y Y \a\t H\h", "Y-m-d H:i:s.u", "D, d M Y", "c", "N j, Y"]
TIMES = [
    datetime(2026, 12, 3, 9, 5, 7, 123456, tzinfo=zoneinfo.ZoneInfo("UTC")),
    datetime(987, 1, 2, 3, 4, 5),  # naive, a year of three digits
    datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN),  # the hour the zone has twice: T is left empty
    datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN),
    datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN),  # the hour the zone skips
    datetime(2026, 7, 1, 23, 59, 59, tzinfo=BERLIN),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_cell_dates_are_written_as_the_date_filter_writes_them(fmt):
    for value in [*TIMES, *(TIMES[0] + timedelta(minutes=17 * n) for n in range(100))]:
        assert format_datetime(value, fmt) == date_format(value, fmt), (fmt, value)


VALUES = ["a<b>&'\" é", "", SafeString("<i>safe</i>"), 0, -12, 7, 10**20, 1234567, True, False, None, 1.5, 12.345,
          -0.5, 1e-07, Decimal("1234.50"), date(2026, 12, 3), datetime(2026, 12, 3, 9, 5, tzinfo=BERLIN),
          gettext_lazy("Yes"), [1, "<"], {"a": "<"}]


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("use_l10n", [None, False])
def test_values_are_written_as_django_writes_them(settings, grouped, autoescape, use_l10n):
    settings.USE_THOUSAND_SEPARATOR = grouped
    context = Context(autoescape=autoescape, use_l10n=use_l10n)
    for value in VALUES:
        assert value_text(value, context) == _django_value_text(value, context), value
    template = Template("{% autoescape " + ("on" if autoescape else "off") + " %}{{ n }}|{{ s }}{% endautoescape %}")
    assert template.render(Context({"n": 1234567, "s": "<b>"})) == (
        f"{'1,234,567' if grouped else '1234567'}|{'&lt;b&gt;' if autoescape else '<b>'}")


def test_every_template_writes_through_value_text():
    assert template_base.render_value_in_context is value_text


@pytest.mark.postgres  # raw SQL on the request path: run on PostgreSQL too
def test_a_session_is_read_as_django_stored_it_and_not_once_expired(client, make_user):
    stored = DjangoStore()
    stored.update({"who": "<x>", "n": 3})
    stored.create()
    assert SessionStore(stored.session_key).load() == {"who": "<x>", "n": 3}
    Session.objects.filter(session_key=stored.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    gone = SessionStore(stored.session_key)
    assert gone.load() == {} and gone.session_key is None
    assert SessionStore("no-such-session-key-at-all").load() == {}

    client.force_login(make_user("aud3", "Auditor"))
    assert client.get("/jobs/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get("/jobs/").status_code == 302  # to the login page


def test_the_mfa_report_reads_its_rows_in_one_query_with_only_the_fields_its_cells_show(
        client, make_user, django_assert_max_num_queries):
    snapshot = MfaSnapshot.objects.create(taken_at=timezone.now(), total_users=200)
    MfaUserRow.objects.bulk_create(MfaUserRow(
        snapshot=snapshot, user_id=f"id-{i}", upn=f"u{i}@contoso.com", classification=MfaClass.MFA_CAPABLE,
        usable=["authenticator"], reasons=[f"reason {i}"], flags=["guest"] if i % 2 else [], policy_hits=[{"a": i}])
        for i in range(200))
    client.force_login(make_user("aud4", "Auditor"))
    client.get("/diagnostics/mfa/", {"per_page": 200})  # figures a snapshot keeps are computed once
    # session, user, access, the snapshot, the trend's snapshots, the notifications count, the rows
    with django_assert_max_num_queries(7):
        response = client.get("/diagnostics/mfa/", {"per_page": 200})
    rows = [row.record for row in response.context["table"].page.object_list]
    assert len(rows) == 200 and {"policy_hits", "group_ids", "evidence"} <= rows[0].get_deferred_fields()
    assert "reason 1" in response.content.decode() and "(guest)" in response.content.decode()


@pytest.mark.postgres  # raw SQL on the request path: run on PostgreSQL too
def test_the_signed_in_person_is_read_as_django_reads_them(client, make_user, django_user_model):
    user = make_user("aud5", "Auditor")
    read = LocalAccountBackend().get_user(user.pk)
    orm = django_user_model.objects.get(pk=user.pk)
    assert {f.attname: getattr(read, f.attname) for f in orm._meta.concrete_fields} == \
        {f.attname: getattr(orm, f.attname) for f in orm._meta.concrete_fields}
    assert LocalAccountBackend().get_user(user.pk + 1000) is None
    client.force_login(user)
    assert client.get("/jobs/").status_code == 200
    user.set_password("another-pw-for-tests-1")
    user.save()
    assert client.get("/jobs/").status_code == 302  # a changed password ends the other sessions
    client.force_login(user)
    django_user_model.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/jobs/").status_code == 302  # as does deactivating the account
    assert LocalAccountBackend().get_user(user.pk) is None


def test_the_findings_page_reads_its_rows_in_one_query_with_only_the_fields_its_cells_show(
        client, make_user, django_assert_max_num_queries):
    scan = AddressScan.objects.create(status="complete", findings_total=200)
    AddressFinding.objects.bulk_create(AddressFinding(
        scan=scan, key=f"k{i}", first_seen=timezone.now(), dn=f"CN=u{i},OU=Users,DC=contoso,DC=com",
        attribute="proxyAddresses", value=f"smtp:u{i}@contoso.com", rule="idfix", severity="warning",
        errors=["format"], beyond_idfix=bool(i % 2), proposed_value=None, explanation="x" * 500, others=[{"dn": "y"}])
        for i in range(200))
    client.force_login(make_user("aud6", "Auditor"))
    client.get("/diagnostics/address-repair/", {"per_page": 200})
    # session, user, access, the scan, the notifications count, the rows, the scan's fixes, the scans to pick from
    with django_assert_max_num_queries(8):
        response = client.get("/diagnostics/address-repair/", {"per_page": 200})
    rows = [row.record for row in response.context["table"].page.object_list]
    assert len(rows) == 200 and {"fix", "others", "explanation"} <= rows[0].get_deferred_fields()
    assert "(beyond IdFix)" in response.content.decode()
