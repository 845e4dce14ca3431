"""Deny by default: every URL pattern refuses the anonymous and every role without its permission."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from portal.accounts.permissions import is_public, required_permissions_of
from portal.accounts.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db

# The sign-in pages: the login form, its second factor (needs the password first), the two legs of "Sign in
# with Microsoft" (state-bound to the session) and the Django admin's login (a redirect to the portal's).
PUBLIC = {"login", "login_second_factor", "entra_start", "entra_callback", "admin_login"}


def _walk(patterns, prefix="", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), namespace + (p.name or ""), p.callback


def _concrete(route: str) -> str:
    import re

    path = re.sub(r"<int:\w+>", "1", route)
    path = re.sub(r"<uuid:\w+>", "00000000-0000-0000-0000-000000000001", path)
    path = re.sub(r"<(str:|slug:|path:)?\w+>", "x", path)
    path = re.sub(r"[\^\$]|\\Z|\(\?P<\w+>[^)]*\)", "x", path)
    return "/" + path


ALL = list(_walk(get_resolver().url_patterns))
PORTAL = [(route, name, view) for route, name, view in ALL if not name.startswith("admin:")]
ADMIN = [(route, name, view) for route, name, view in ALL if name.startswith("admin:") and not is_public(view)]


def test_every_portal_view_declares_its_permissions():
    undeclared = [name for _, name, view in PORTAL if required_permissions_of(view) is None and not is_public(view)]
    assert undeclared == []
    assert {name for _, name, view in PORTAL if is_public(view)} == PUBLIC


def _param_id(value) -> str:
    # A view's repr holds its memory address: ids must be the same in every xdist worker.
    return value if isinstance(value, str) else getattr(value, "__qualname__", type(value).__name__)


@pytest.mark.parametrize("route,name,view", [p for p in PORTAL if p[1] not in PUBLIC], ids=_param_id)
def test_anonymous_is_sent_to_login(client, route, name, view):
    response = client.get(_concrete(route))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("route,name,view", [p for p in PORTAL if p[1] not in PUBLIC], ids=_param_id)
def test_roles_without_the_permission_are_refused(client, role_users, route, name, view):
    needed = set(required_permissions_of(view))
    for role, user in role_users.items():
        client.force_login(user)
        allowed = needed <= ROLE_PERMISSIONS[role]
        for method in ("get", "post"):
            response = getattr(client, method)(_concrete(route))
            if allowed:
                assert response.status_code != 403, (role, method, route)
            else:
                assert response.status_code == 403, (role, method, route)
                assert "You cannot open this page" in response.content.decode()


def test_forbidden_page_names_the_role_needed(client, role_users):
    client.force_login(role_users["Helpdesk"])
    response = client.get("/audit/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "<strong>Administrator</strong> or <strong>Auditor</strong>" in body


def test_user_without_a_role_sees_only_home(client, django_user_model):
    user = django_user_model.objects.create_user("norole", password="x-pw-123456")
    client.force_login(user)
    assert client.get("/").status_code == 200
    assert "holds no role" in client.get("/").content.decode()
    for route, _name, view in PORTAL:
        if required_permissions_of(view):
            assert client.get(_concrete(route)).status_code == 403, route


@pytest.mark.parametrize("route,name,view", ADMIN[:40], ids=_param_id)
def test_django_admin_is_for_superusers_only(client, role_users, route, name, view):
    client.force_login(role_users["Administrator"])
    assert client.get(_concrete(route)).status_code == 403


def test_superuser_reaches_admin(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="x-pw-123456"))
    assert client.get("/admin/").status_code == 200


def test_expired_session_goes_to_login_and_back(client, role_users):
    response = client.get("/jobs/?status=failed")
    assert response.status_code == 302
    login_url = response["Location"]
    assert login_url == "/login/?next=/jobs/%3Fstatus%3Dfailed"
    page = client.get(login_url)
    assert 'name="next" value="/jobs/?status=failed"' in page.content.decode()
    response = client.post("/login/", {"username": "helpdesk", "password": "pw-for-tests-only-1",
                                       "next": "/jobs/?status=failed"})
    assert response.status_code == 302 and response["Location"] == "/jobs/?status=failed"


def test_expired_session_during_htmx_poll_redirects_whole_page(client):
    response = client.get("/jobs/1/log/?after=3", HTTP_HX_REQUEST="true",
                          HTTP_HX_CURRENT_URL="http://testserver/jobs/1/")
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/login/?next=%2Fjobs%2F1%2F"


def test_csrf_is_enforced_on_forms(role_users):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(role_users["Helpdesk"])
    assert strict.post("/jobs/connectivity-check/").status_code == 403


def test_role_groups_match_roles_py():
    from django.contrib.auth.models import Group

    from portal.accounts.services import do_sync_roles

    do_sync_roles()
    for role, perms in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == perms


def test_areas_not_built_yet_say_so_in_the_navigation(client, role_users):
    client.force_login(role_users["Administrator"])
    page = client.get("/").content.decode()
    from portal.accounts.context_processors import NOT_BUILT

    assert page.count('<span class="soon">not built yet</span>') == len(NOT_BUILT)
    assert 'href="/diagnostics/mfa/">MFA registration</a>' in page, "built areas carry no marker"
    assert 'href="/diagnostics/address-repair/">Address repair</a>' in page


def _undeclared_view(request):
    from django.http import HttpResponse

    return HttpResponse("reached")


def _declared_view(request):
    from django.http import HttpResponse

    return HttpResponse("reached")


# A URLconf of this module's own (ROOT_URLCONF in the test below): the portal's, plus the same page body
# twice, once from a view without a declared permission and once with.
urlpatterns = []


@pytest.fixture
def own_urls(settings):
    from django.urls import path

    from portal.accounts.permissions import requires
    from portal.urls import urlpatterns as portal_urls

    urlpatterns[:] = [path("undeclared/", _undeclared_view),
                      path("declared/", requires("accounts.view_dl_migration")(_declared_view)), *portal_urls]
    settings.ROOT_URLCONF = __name__
    yield
    urlpatterns.clear()


def test_the_middleware_refuses_a_view_that_declares_no_permission_even_to_a_superuser(client, django_user_model,
                                                                                        own_urls):
    client.force_login(django_user_model.objects.create_superuser("root", password="x-pw-123456"))
    refused = client.get("/undeclared/")
    assert refused.status_code == 403
    assert "This page declares no permission, so it is refused." in refused.content.decode()
    reached = client.get("/declared/")
    assert reached.status_code == 200 and reached.content == b"reached"
