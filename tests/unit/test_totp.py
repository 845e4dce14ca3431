"""Local accounts' second factor: enrolment at the first sign-in (QR code and key, confirmed by a code
from the app, recovery codes shown once), then a code at every sign-in, each code good once, a
recovery code instead, and wrong codes counted toward the lockout."""

import re

import pyotp
import pytest

from portal.accounts.models import TotpDevice
from portal.audit.models import AuditEvent
from tests.support.forms import form_fields

pytestmark = [pytest.mark.django_db]

PASSWORD = "right-password-1"


@pytest.fixture(autouse=True)
def totp_on(settings):
    settings.LOCAL_ACCOUNTS_TOTP = True


def _password(client, username="breakglass"):
    answer = client.post("/login/", {"username": username, "password": PASSWORD, "next": "/jobs/"})
    assert answer.status_code == 302 and answer["Location"] == "/login/second-factor/"
    assert "_auth_user_id" not in client.session, "a password alone signs nobody in"


def _enrol(client):
    _password(client)
    page = client.get("/login/second-factor/").content.decode()
    assert "<svg" in page and "Set up your authenticator" in page
    key = re.search(r'class="totp-key">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    fields = form_fields(page, "/login/second-factor/")
    answer = client.post("/login/second-factor/", {**fields, "code": pyotp.TOTP(key).now()})
    assert answer.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", answer.content.decode())
    assert len(codes) == 10
    return key, codes


def test_enrolment_then_a_code_at_each_sign_in(client, make_user):
    user = make_user("breakglass", "Administrator", password=PASSWORD)
    key, _codes = _enrol(client)
    assert "_auth_user_id" in client.session
    device = TotpDevice.objects.get(user=user)
    assert device.confirmed and key not in device.secret_encrypted, "the secret is stored encrypted"
    assert AuditEvent.objects.filter(action="account.totp.enrolled", target="user:breakglass").count() == 1
    client.post("/logout/")
    _password(client)
    assert "Enter your code" in client.get("/login/second-factor/").content.decode()
    # The code that confirmed the enrolment was used: the same one again is refused (no replay).
    replay = client.post("/login/second-factor/", {"code": pyotp.TOTP(key).now()})
    assert replay.status_code == 400 and "not valid (or was already used)" in replay.content.decode()
    device.last_used_step -= 2  # as if the enrolment was a minute ago: the current code is fresh
    device.save()
    answer = client.post("/login/second-factor/", {"code": pyotp.TOTP(key).now()})
    assert answer.status_code == 302 and answer["Location"] == "/jobs/"
    assert AuditEvent.objects.filter(action="auth.login").last().detail == {"method": "password+totp"}


def test_a_recovery_code_signs_in_once(client, make_user):
    make_user("breakglass", "Administrator", password=PASSWORD)
    _key, codes = _enrol(client)
    client.post("/logout/")
    _password(client)
    assert client.post("/login/second-factor/", {"code": codes[3].upper()}).status_code == 302
    used = AuditEvent.objects.get(action="account.totp.recovery_code_used")
    assert used.after == {"left": 9}
    client.post("/logout/")
    _password(client)
    assert client.post("/login/second-factor/", {"code": codes[3]}).status_code == 400


def test_wrong_codes_count_toward_the_lockout(client, make_user, settings):
    make_user("breakglass", "Administrator", password=PASSWORD)
    _enrol(client)
    client.post("/logout/")
    _password(client)
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert client.post("/login/second-factor/", {"code": "000000"}).status_code == 400
    locked = client.post("/login/second-factor/", {"code": "000000"})
    assert locked.status_code == 429
    assert AuditEvent.objects.filter(action="auth.lockout", target="user:breakglass").count() == 1


def test_the_second_factor_page_needs_a_password_first(client):
    assert client.get("/login/second-factor/")["Location"] == "/login/"


def test_switched_off_the_password_signs_in(client, make_user, settings):
    settings.LOCAL_ACCOUNTS_TOTP = False
    make_user("breakglass", "Administrator", password=PASSWORD)
    client.post("/login/", {"username": "breakglass", "password": PASSWORD})
    assert "_auth_user_id" in client.session


def test_an_administrator_removes_a_lost_authenticator_and_it_is_audited(client, make_user):
    user = make_user("breakglass", "Administrator", password=PASSWORD)
    _enrol(client)
    root = make_user("root", "Administrator")
    root.is_superuser = root.is_staff = True
    root.save()
    client.force_login(root)
    device = TotpDevice.objects.get(user=user)
    page = client.get(f"/admin/accounts/totpdevice/{device.pk}/delete/")
    assert page.status_code == 200 and device.secret_encrypted not in page.content.decode()
    client.post(f"/admin/accounts/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert not TotpDevice.objects.filter(user=user).exists()
    reset = AuditEvent.objects.get(action="account.totp.reset")
    assert reset.target == "user:breakglass" and reset.actor == root
