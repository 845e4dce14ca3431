"""Which Active Directory settings the portal accepts: a password never crosses the network in clear text."""

from __future__ import annotations

import pytest

from portal.connectors import registry


@pytest.fixture
def production_ad(settings):
    settings.LAB_MODE = False
    settings.AD_HOST, settings.AD_BASE_DN = "dc1.contoso.com", "DC=contoso,DC=com"
    settings.AD_BIND_DN, settings.AD_PASSWORD = "CN=svc-dirops,OU=Service,DC=contoso,DC=com", "Svc-Pa55word"
    settings.AD_AUTH, settings.AD_USE_SSL, settings.AD_START_TLS = "simple", False, False
    return settings


def test_simple_bind_without_tls_is_refused_outside_the_lab(production_ad):
    with pytest.raises(registry.InsecureConfiguration, match="AD_USE_SSL=true .* or AD_START_TLS=true"):
        registry.ad_settings()


def test_the_refusal_is_a_configuration_error_the_pages_already_report(production_ad):
    with pytest.raises(registry.NotConfigured):
        registry.ad_settings()


@pytest.mark.parametrize(("use_ssl", "start_tls"), [(True, False), (False, True)])
def test_simple_bind_over_tls_is_accepted(production_ad, use_ssl, start_tls):
    production_ad.AD_USE_SSL, production_ad.AD_START_TLS = use_ssl, start_tls
    built = registry.ad_settings()
    assert built.use_ssl == use_ssl and built.start_tls == start_tls and built.auth == "simple"


def test_kerberos_needs_no_tls_flag(production_ad):
    production_ad.AD_AUTH, production_ad.AD_BIND_DN = "gssapi", None
    assert registry.ad_settings().auth == "gssapi"


def test_the_lab_may_bind_in_clear_text(production_ad):
    production_ad.LAB_MODE = True  # a lab pointed at its own DC by AD_HOST
    assert registry.ad_settings().host == "dc1.contoso.com"


def test_check_deploy_reports_the_clear_text_bind_before_any_job_meets_it(tmp_path):
    from tests.unit.test_security_headers import _deploy_env, _manage

    ad = {"AD_HOST": "dc1.contoso.com", "AD_BASE_DN": "DC=contoso,DC=com", "AD_BIND_DN": "CN=svc,DC=contoso,DC=com"}
    refused = _manage(_deploy_env(tmp_path, **ad), "check", "--deploy")
    assert refused.returncode != 0 and "dirops.E001" in refused.stderr and "AD_START_TLS=true" in refused.stderr
    accepted = _manage(_deploy_env(tmp_path, **ad, AD_START_TLS="true"), "check", "--deploy", "--fail-level", "WARNING")
    assert accepted.returncode == 0, accepted.stderr
