"""Post a form as the browser would: the fields the rendered page holds, with their values, and
nothing the test invents (a test that posts its own dict hides a form that posts nothing)."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormParser(HTMLParser):
    def __init__(self, action: str):
        super().__init__()
        self.action, self.inside, self.found = action, False, False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._select_first: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not self.found and a.get("action") == self.action:
            self.inside = self.found = True
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                self.fields[a["name"]] = a.get("value") or ("on" if kind == "checkbox" else "")
        elif tag == "select" and a.get("name"):
            self._select, self._select_first = a["name"], None
        elif tag == "option" and self._select:
            if self._select_first is None:
                self._select_first = a.get("value", "")
            if "selected" in a:
                self.fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            self.fields.setdefault(self._select, self._select_first or "")
            self._select = None
        if tag == "form" and self.inside:
            self.inside = False


def form_fields(html: str, action: str) -> dict[str, str]:
    """The fields of the first form posting to ``action``, as a browser would submit them untouched."""
    parser = _FormParser(action)
    parser.feed(html)
    assert parser.found, f"no form posts to {action}"
    return parser.fields
