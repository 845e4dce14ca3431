"""Local sign-ins are throttled by django-axes: failures counted (not one audit row each), the
account locked after LOGIN_FAILURE_LIMIT of them on the portal login and the Django admin login,
and the lockout and the unlock audited."""

import pytest
from axes.models import AccessAttempt
from axes.utils import reset

from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _fail(client, url="/login/", username="breakglass", times=1):
    return [client.post(url, {"username": username, "password": "wrong-password-9"}) for _ in range(times)][-1]


def test_lockout_after_the_limit_refuses_even_the_right_password(client, make_user, settings):
    make_user("breakglass", "Administrator", password="right-password-1")
    assert _fail(client, times=settings.LOGIN_FAILURE_LIMIT - 1).status_code == 200
    assert AccessAttempt.objects.get(username="breakglass").failures_since_start == settings.LOGIN_FAILURE_LIMIT - 1
    assert not AuditEvent.objects.filter(action__startswith="auth.").exists(), "failures are counted, not audited"
    locked = _fail(client)
    assert locked.status_code == 429 and "locked after 5 failed sign-ins" in locked.content.decode()
    right = client.post("/login/", {"username": "breakglass", "password": "right-password-1"})
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    lockout = AuditEvent.objects.get(action="auth.lockout")
    assert lockout.target == "user:breakglass" and lockout.after["failures"] == settings.LOGIN_FAILURE_LIMIT
    assert "wrong-password-9" not in str(list(AuditEvent.objects.values()))


def test_admin_login_is_the_throttled_portal_login(client, make_user, settings):
    user = make_user("root", "Administrator", password="right-password-1")
    user.is_superuser = user.is_staff = True
    user.save()
    assert client.get("/admin/login/")["Location"] == "/login/?next=/admin/"
    assert client.post("/admin/login/", {"username": "root", "password": "wrong-password-9"}).status_code == 302
    assert "_auth_user_id" not in client.session, "the admin's own login form is not served"
    locked = _fail(client, username="root", times=settings.LOGIN_FAILURE_LIMIT)
    assert locked.status_code == 429
    assert AuditEvent.objects.filter(action="auth.lockout", target="user:root").count() == 1


def test_unlock_is_audited_and_lets_the_right_password_in(client, make_user, settings):
    make_user("breakglass", "Administrator", password="right-password-1")
    _fail(client, times=settings.LOGIN_FAILURE_LIMIT)
    assert reset(username="breakglass") == 1
    unlock = AuditEvent.objects.get(action="auth.unlock")
    assert unlock.target == "user:breakglass" and unlock.before == {"failures": settings.LOGIN_FAILURE_LIMIT}
    client.post("/login/", {"username": "breakglass", "password": "right-password-1"})
    assert "_auth_user_id" in client.session


def test_a_success_before_the_limit_clears_the_count_silently(client, make_user):
    make_user("breakglass", "Administrator", password="right-password-1")
    _fail(client, times=2)
    client.post("/login/", {"username": "breakglass", "password": "right-password-1"})
    assert not AccessAttempt.objects.filter(username="breakglass").exists()
    assert not AuditEvent.objects.filter(action="auth.unlock").exists()


# -- what a run of failures locks (LOGIN_LOCKOUT_BY) ---------------------------------------------

def _sign_in(client, username, address, password="right-password-1"):
    client.logout()
    client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)
    return "_auth_user_id" in client.session


def _fail_from(client, username, address, times):
    for _ in range(times):
        client.post("/login/", {"username": username, "password": "wrong-password-9"}, REMOTE_ADDR=address)


def test_by_default_one_address_failing_locks_only_that_username_from_that_address(client, make_user, settings):
    assert settings.LOGIN_LOCKOUT_BY == "username+address"
    make_user("breakglass", "Administrator", password="right-password-1")
    make_user("colleague", "Administrator", password="right-password-1")
    _fail_from(client, "breakglass", "10.0.0.1", settings.LOGIN_FAILURE_LIMIT)  # a shared NAT's one address
    assert not _sign_in(client, "breakglass", "10.0.0.1")
    assert _sign_in(client, "colleague", "10.0.0.1"), "a colleague behind the same address is not locked out"
    assert _sign_in(client, "breakglass", "10.0.0.2"), "the account from another address is not locked out"


def test_by_username_the_account_is_locked_from_every_address(client, make_user, settings):
    settings.AXES_LOCKOUT_PARAMETERS = settings.LOGIN_LOCKOUT_CHOICES["username"]
    make_user("breakglass", "Administrator", password="right-password-1")
    make_user("colleague", "Administrator", password="right-password-1")
    for n in range(settings.LOGIN_FAILURE_LIMIT):  # spread over addresses: still counted together
        _fail_from(client, "breakglass", f"10.0.1.{n}", 1)
    assert not _sign_in(client, "breakglass", "10.0.2.1")
    assert _sign_in(client, "colleague", "10.0.1.0")


def test_by_username_or_address_one_address_locks_every_username(client, make_user, settings):
    settings.AXES_LOCKOUT_PARAMETERS = settings.LOGIN_LOCKOUT_CHOICES["username,address"]
    make_user("breakglass", "Administrator", password="right-password-1")
    make_user("colleague", "Administrator", password="right-password-1")
    _fail_from(client, "breakglass", "10.0.0.1", settings.LOGIN_FAILURE_LIMIT)
    assert not _sign_in(client, "colleague", "10.0.0.1")
    assert not _sign_in(client, "breakglass", "10.0.0.2")
    assert _sign_in(client, "colleague", "10.0.0.2")


def test_an_unknown_lockout_choice_is_refused_at_start(monkeypatch):
    import runpy
    from pathlib import Path

    monkeypatch.setenv("LOGIN_LOCKOUT_BY", "address")
    settings_py = Path(__file__).resolve().parents[2] / "portal" / "settings.py"
    with pytest.raises(ValueError, match="LOGIN_LOCKOUT_BY must be one of username\\+address, username, "):
        runpy.run_path(str(settings_py), run_name="settings_under_test")


# -- the Sign-in lockouts page -------------------------------------------------------------------

def test_an_administrator_sees_the_lockout_and_unlocks_it_from_the_page(client, make_user, settings):
    from django.urls import reverse

    from tests.support.forms import form_fields

    make_user("breakglass", "Administrator", password="right-password-1")
    admin = make_user("boss", "Administrator")
    _fail_from(client, "breakglass", "10.0.0.1", settings.LOGIN_FAILURE_LIMIT)
    _fail_from(client, "nobody-here", "10.0.0.1", 2)  # counted, not locked: not listed
    client.force_login(admin)
    page = client.get(reverse("lockouts"))
    html = page.content.decode()
    assert page.status_code == 200 and "breakglass" in html and "nobody-here" not in html
    attempt = AccessAttempt.objects.get(username="breakglass")
    action = reverse("unlock", args=[attempt.pk])
    done = client.post(action, form_fields(html, action), follow=True)
    assert "Unlocked the sign-in of breakglass" in done.content.decode()
    assert "No sign-in is locked out" in done.content.decode()
    unlock = AuditEvent.objects.get(action="auth.unlock")
    assert unlock.target == "user:breakglass" and unlock.actor_id == admin.pk
    assert _sign_in(client, "breakglass", "10.0.0.1")
    client.force_login(admin)
    again = client.post(action, form_fields(html, action), follow=True)  # the same form, posted twice
    assert "That lockout had already ended" in again.content.decode()
    assert AuditEvent.objects.filter(action="auth.unlock").count() == 1


def test_lockouts_page_is_for_administrators_only(client, make_user, settings):
    from django.urls import reverse

    make_user("breakglass", "Administrator", password="right-password-1")
    _fail_from(client, "breakglass", "10.0.0.1", settings.LOGIN_FAILURE_LIMIT)
    attempt = AccessAttempt.objects.get(username="breakglass")
    for role in ("Helpdesk", "Auditor", "Approver"):
        client.force_login(make_user(f"u-{role}", role))
        assert client.get(reverse("lockouts")).status_code == 403
        assert client.post(reverse("unlock", args=[attempt.pk])).status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not AuditEvent.objects.filter(action="auth.unlock").exists()
