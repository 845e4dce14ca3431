"""portal.object_urls.object_url writes what reverse() writes, without asking reverse() for every row."""

from __future__ import annotations

import uuid

import pytest
from django.urls import NoReverseMatch, path, re_path, reverse, set_urlconf

from portal import object_urls
from portal.object_urls import object_url


def _view(request, **kwargs):
    raise AssertionError("never served")


urlpatterns = [
    path("things/<int:pk>/", _view, name="thing"),
    path("lists/<uuid:guid>/members/", _view, name="list"),
    re_path(r"^years/(?P<year>[0-9]{4})/$", _view, name="year"),
    path("names/<str:name>/", _view, name="name"),
]


@pytest.fixture
def urls(settings):
    settings.ROOT_URLCONF = __name__
    set_urlconf(None)
    object_urls._SPLIT.clear()
    yield
    object_urls._SPLIT.clear()


def test_the_same_url_as_reverse_for_ids_and_uuids(urls, monkeypatch):
    guid = uuid.uuid4()
    assert object_url("thing", 0) == reverse("thing", args=[0]) == "/things/0/"
    assert object_url("thing", 123456) == reverse("thing", args=[123456])
    assert object_url("list", guid) == reverse("list", args=[guid]) == f"/lists/{guid}/members/"
    calls = []
    monkeypatch.setattr(object_urls, "reverse", lambda *a, **k: calls.append(a) or reverse(*a, **k))
    assert [object_url("thing", n) for n in range(50)] == [f"/things/{n}/" for n in range(50)]
    assert calls == [], "the pattern was reversed once, before"


def test_other_values_and_patterns_go_to_reverse(urls):
    assert object_url("year", 2024) == "/years/2024/"  # the stand-in does not fit the pattern: reverse() each time
    with pytest.raises(NoReverseMatch):
        object_url("year", 20245)
    with pytest.raises(NoReverseMatch):
        object_url("thing", -1)
    assert object_url("name", "a b") == reverse("name", args=["a b"]) == "/names/a%20b/"
    with pytest.raises(NoReverseMatch):
        object_url("thing", True)  # not an int to the shortcut: reverse() says what it says of it


def test_the_script_prefix_is_the_request_s(urls):
    from django.urls import set_script_prefix

    assert object_url("thing", 7) == "/things/7/"
    set_script_prefix("/portal/")
    try:
        assert object_url("thing", 7) == reverse("thing", args=[7]) == "/portal/things/7/"
    finally:
        set_script_prefix("/")


def test_the_template_tag_writes_what_the_url_tag_writes_without_reverse_per_row(urls, monkeypatch):
    from django.template import Context, Template

    rows = [{"id": n} for n in range(30)]
    ours = Template("{% load portal_tables %}{% for u in rows %}{% object_url 'thing' u.id %};{% endfor %}")
    theirs = Template("{% for u in rows %}{% url 'thing' u.id %};{% endfor %}")
    expected = theirs.render(Context({"rows": rows}))
    object_urls._SPLIT.clear()
    calls = []
    monkeypatch.setattr(object_urls, "reverse", lambda *a, **k: calls.append(a) or reverse(*a, **k))
    assert ours.render(Context({"rows": rows})) == expected
    assert len(calls) == 2, "the stand-in and its check, not one reverse() per row"
