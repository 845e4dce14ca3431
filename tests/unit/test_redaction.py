"""Secrets never reach a job's log, in whatever form a command, URL or error message prints them."""

from __future__ import annotations

import pytest

from portal.jobs.redaction import MASK, redact, redact_data, register_secret


@pytest.mark.parametrize(
    ("line", "secret", "kept"),
    [
        ('bind with password="my secret value" as admin', "my secret value", 'password="********" as admin'),
        ("config password: 'a b c' loaded", "a b c", "password: '********' loaded"),
        ('{"password": "with \\"escaped\\" quotes"}', "escaped", '{"password": "********"}'),
        ('password="never closed because the line was cut', "closed because", 'password="********'),
        ("key passphrase=Corr3ct-Horse read", "Corr3ct-Horse", "passphrase=******** read"),
        ('{"certificate_passphrase": "open sesame"}', "open sesame", '"certificate_passphrase": "********"'),
        ("Server=sql1;Database=dirops;Uid=svc;Pwd=Sql-Pa55;", "Sql-Pa55", "Uid=svc;Pwd=********;"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "Authorization: Basic ********"),
        ('headers {"Authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz", '"Authorization": "Basic ********"'),
        ("GET https://svc:hunter2@proxy.example.com/path", "hunter2", "https://svc:********@proxy.example.com/path"),
        ("postgres://dirops:p@ss:w0rd@db:5432/dirops", "p@ss:w0rd", "postgres://dirops:********@db:5432/dirops"),
        ("$pw = ConvertTo-SecureString 'Spring 2024!' -AsPlainText -Force", "Spring 2024!",
         "ConvertTo-SecureString '********' -AsPlainText -Force"),
        ('ConvertTo-SecureString -String "Pl41n" -AsPlainText -Force', "Pl41n",
         'ConvertTo-SecureString -String "********" -AsPlainText -Force'),
        ('ConvertTo-SecureString -AsPlainText -Force "Pl41n"', "Pl41n", '-Force "********"'),
        ("ConvertTo-SecureString 'Pl41n'", "Pl41n", "ConvertTo-SecureString '********'"),
        ("'Piped 1n' | ConvertTo-SecureString -AsPlainText -Force", "Piped 1n", "'********' | ConvertTo-SecureString"),
    ],
)
def test_secret_forms_are_masked(line, secret, kept):
    redacted = redact(line)
    assert secret not in redacted
    assert kept in redacted


def test_private_key_is_masked_even_without_its_end_line():
    cut = "loaded key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7"
    redacted = redact(cut)
    assert "MIIEvQ" not in redacted and "BKcwgg" not in redacted
    assert redacted == f"loaded key -----BEGIN PRIVATE KEY-----{MASK}"


def test_private_key_with_its_end_line_keeps_the_text_after_it():
    pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkq\n-----END ENCRYPTED PRIVATE KEY-----\nnext step"
    assert redact(pem) == f"-----BEGIN ENCRYPTED PRIVATE KEY-----{MASK}-----END ENCRYPTED PRIVATE KEY-----\nnext step"


def test_a_powershell_variable_is_not_a_secret():
    line = "ConvertTo-SecureString $plain -AsPlainText -Force"
    assert redact(line) == line


@pytest.mark.parametrize(
    "line",
    [
        "passwordLastSet attribute read",
        "pwdLastSet=133512345678900000 badPwdCount=0",
        "Token count 5",
        "token_type: Bearer",
        "Authentication: Basic authentication is disabled on the tenant",
        "https://graph.microsoft.com/v1.0/users?$top=999",
        "ldap://dc1.contoso.com:636 as svc@contoso.com",
        "Set-DistributionGroup -BypassSecurityGroupManagerCheck",
    ],
)
def test_ordinary_text_is_not_masked(line):
    assert redact(line) == line


def test_redact_data_masks_passphrase_and_pwd_keys():
    data = {"certificate_passphrase": "open sesame", "Pwd": "x1", "db": {"pass": "y2"},
            "headers": {"Authorization": "Basic dXNlcjpwYXNz"}}
    assert redact_data(data) == {"certificate_passphrase": MASK, "Pwd": MASK, "db": {"pass": MASK},
                                 "headers": {"Authorization": MASK}}


def test_redact_data_keeps_attributes_that_only_mention_a_secret():
    # A backup of a list or a user in a job's data: these values are what the admin came to read.
    data = {"msExchBypassModerationLink": ["CN=a"], "BypassNestedModerationEnabled": True, "pwdLastSet": "1",
            "badPwdCount": 0, "isPasswordlessCapable": True, "lastPasswordChangeDateTime": "2025-01-01"}
    assert redact_data(data) == data


def test_the_entra_certificate_passphrase_is_registered(settings, tmp_path):
    from portal.connectors import registry

    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----\n")
    settings.LAB_MODE = False
    settings.ENTRA_TENANT_ID, settings.ENTRA_CLIENT_ID = "tenant", "client"
    settings.ENTRA_CLIENT_SECRET = None
    settings.ENTRA_CERTIFICATE_KEY_FILE = str(key)
    settings.ENTRA_CERTIFICATE_THUMBPRINT = "AB" * 20
    settings.ENTRA_CERTIFICATE_PASSPHRASE = "unlock-the-key-9"
    registry.app_credentials()
    assert redact("msal: could not decrypt with unlock-the-key-9") == f"msal: could not decrypt with {MASK}"


def test_known_values_are_masked_wherever_they_appear():
    register_secret("Kn0wn-Value-42")
    assert redact("error: Kn0wn-Value-42 rejected") == f"error: {MASK} rejected"


def test_counts_and_flags_are_never_masked_as_secrets():
    from portal.jobs.redaction import MASK, redact_data

    data = redact_data({"password_changes": 3, "tokens": 7, "secrets_found": 0, "password_expired": True,
                        "client_secret": "abc", "nested": {"token": "t", "token_count": 5}})
    assert data == {"password_changes": 3, "tokens": 7, "secrets_found": 0, "password_expired": True,
                    "client_secret": MASK, "nested": {"token": MASK, "token_count": 5}}
