"""The portal's own error pages (templates/403.html, 404.html, 500.html), in its style with a way home: what
`make demo` shows too, since DEBUG is off there (tests/unit/test_deployment.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_not_found_is_the_portal_page(client, role_users):
    client.force_login(role_users["Helpdesk"])
    page = client.get("/no/such/page/")
    body = page.content.decode()
    assert page.status_code == 404 and "There is nothing at this address" in body
    assert 'href="/static/css/portal.css"' in body and "Back to the start page" in body


def test_a_server_error_is_the_portal_page_with_a_way_home(client, role_users, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("diagnostics_app.mfa.selectors.snapshot_or_latest", boom)
    client.force_login(role_users["Auditor"])
    client.raise_request_exception = False
    page = client.get("/diagnostics/mfa/")
    body = page.content.decode()
    assert page.status_code == 500 and "Something went wrong on our side" in body
    assert 'href="/static/css/portal.css"' in body and '<a href="/">Back to the start page</a>' in body
    assert 'class="topbar"' in body and "RuntimeError" not in body
