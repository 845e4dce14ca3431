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
