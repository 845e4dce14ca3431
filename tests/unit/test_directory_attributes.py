"""The Directory pages read and show an allowlist of attributes, never a secret, never a secret-holding object."""

import contextlib
import uuid

import pytest

from portal.connectors import ad
from portal.directory import attributes

# Every secret named in the issue, spelled as AD spells it.
SECRETS = [
    "ms-Mcs-AdmPwd", "msLAPS-Password", "msLAPS-EncryptedPassword", "msLAPS-EncryptedPasswordHistory",
    "msLAPS-EncryptedDSRMPassword", "msLAPS-EncryptedDSRMPasswordHistory", "msFVE-RecoveryPassword",
    "msFVE-KeyPackage", "unicodePwd", "userPassword", "unixUserPassword", "supplementalCredentials", "dBCSPwd",
    "lmPwdHistory", "ntPwdHistory", "msDS-ManagedPassword", "userParameters", "msTPM-OwnerInformation",
    "trustAuthIncoming", "trustAuthOutgoing", "currentValue", "priorValue", "msKds-RootKeyData",
    "msDS-KeyCredentialLink",
]


@pytest.mark.parametrize("name", SECRETS)
def test_no_secret_is_allowlisted_or_shown(name):
    shown = {a.lower() for a in attributes.SHOWN_ATTRIBUTES}
    assert name.lower() not in shown
    assert attributes.is_secret(name) and not attributes.is_shown(name)
    assert not attributes.is_shown(name.upper() + ";binary"), "options and case change nothing"


@pytest.mark.parametrize("name", ["msLAPS-SomethingNew", "msFVE-VolumeGuid", "msExchFuturePassword",
                                  "ms-Mcs-AdmPwdExpirationTime", "msDS-ManagedPasswordId"])
def test_names_of_secret_families_count_as_secret(name):
    assert attributes.is_secret(name)


def test_the_allowlist_has_no_secret_and_holds_what_helpdesk_needs():
    assert [a for a in attributes.SHOWN_ATTRIBUTES if attributes.is_secret(a)] == []
    for needed in ("mail", "proxyAddresses", "targetAddress", "legacyExchangeDN", "mailNickname", "authOrig",
                   "dLMemSubmitPerms", "msExchRecipientTypeDetails", "extensionAttribute15", "userAccountControl",
                   "groupType", "managedBy", "pwdLastSet"):
        assert attributes.is_shown(needed), needed
    assert len(set(map(str.lower, attributes.SHOWN_ATTRIBUTES))) == len(attributes.SHOWN_ATTRIBUTES)
    assert set(attributes.SEARCH_ATTRIBUTES) <= set(attributes.SHOWN_ATTRIBUTES)
    assert "member" not in {a.lower() for a in attributes.SHOWN_ATTRIBUTES}, "members are read in ranges"


@pytest.mark.parametrize("classes", [("top", "msFVE-RecoveryInformation"), ("top", "msTPM-InformationObject"),
                                     ("top", "leaf", "secret"), ("top", "trustedDomain")])
def test_secret_holding_classes_are_recognised(classes):
    assert attributes.secret_class(classes) == classes[-1]
    assert attributes.secret_class(("top", "person", "user")) is None


def test_flags_are_named():
    assert attributes.flag_names("userAccountControl", "514") == "ACCOUNTDISABLE, NORMAL_ACCOUNT"
    assert attributes.flag_names("groupType", "-2147483646") == "global, security"
    assert attributes.flag_names("groupType", "8") == "universal, distribution"
    assert attributes.flag_names("mail", "8") == ""


class _FakeDirectory:
    """Answers like a server that ignores the attribute list: it sends secrets too."""

    def __init__(self, classes):
        self.classes = classes
        self.asked = []

    def read_by_guid(self, guid, *, attributes=None):
        self.asked.append(attributes)
        return ad.DirectoryObject(
            dn="CN=Zed,OU=People,DC=lab,DC=example", guid=uuid.UUID(guid), sid=None, object_classes=self.classes,
            attributes={"objectClass": list(self.classes), "displayName": ["Zed"], "mail": ["zed@contoso.com"],
                        "userAccountControl": ["512"], "userParameters": ["P@ssw0rd-in-userParameters"],
                        "ms-Mcs-AdmPwd": ["LapsSecret123"], "msFVE-RecoveryPassword": ["111111-222222"],
                        "info": ["not on the allowlist"]})

    def iter_values(self, dn, attribute):
        return iter(())


@pytest.fixture
def fake_ad(monkeypatch):
    def install(classes):
        directory = _FakeDirectory(classes)
        monkeypatch.setattr("portal.directory.selectors.active_directory", lambda: contextlib.nullcontext(directory))
        return directory
    return install


@pytest.mark.django_db
def test_object_page_asks_for_the_allowlist_and_shows_no_secret(client, make_user, fake_ad):
    directory = fake_ad(("top", "person", "organizationalPerson", "user"))
    client.force_login(make_user("hd", "Helpdesk"))
    page = client.get(f"/directory/objects/{uuid.uuid4()}/").content.decode()
    assert directory.asked == [attributes.SHOWN_ATTRIBUTES], "named attributes only, never '*'"
    assert "zed@contoso.com" in page and "NORMAL_ACCOUNT" in page
    for leaked in ("P@ssw0rd", "LapsSecret123", "111111-222222", "userParameters", "ms-Mcs-AdmPwd",
                   "not on the allowlist"):
        assert leaked not in page


@pytest.mark.django_db
def test_bitlocker_recovery_object_is_refused(client, make_user, fake_ad):
    fake_ad(("top", "msFVE-RecoveryInformation"))
    client.force_login(make_user("admin", "Administrator"))
    response = client.get(f"/directory/objects/{uuid.uuid4()}/")
    page = response.content.decode()
    assert response.status_code == 403 and "This object is not shown" in page
    assert "111111-222222" not in page and "Zed" not in page
