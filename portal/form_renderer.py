"""Form widgets written in Python: every filter form of the list and report pages renders a select, an input or a
set of checkboxes through Django's widget templates, one template (and an attributes template) per option, a
quarter of the MFA report's time under load. The writers below produce the HTML those templates produce, byte
for byte (tests/unit/test_form_renderer.py renders every widget of the pages' forms both ways); a template they
do not cover, or one a project app overrides, is rendered by Django's templates as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
from django.forms.renderers import DjangoTemplates
from django.template import Context
from django.template.base import render_value_in_context
from django.utils.html import escape
from django.utils.safestring import SafeData

WIDGETS = "django/forms/widgets/"
# What {{ value }} does in a template: localized, escaped unless safe (render_value_in_context needs a context).
_CONTEXT = Context(autoescape=True)


def _text(value: Any) -> str:
    return render_value_in_context(value, _CONTEXT)


def _stringformat(value: Any) -> str:
    """{{ value|stringformat:'s' }}: the filter is marked is_safe, so a safe value stays unescaped."""
    text = "%s" % (str(value) if isinstance(value, tuple) else value)  # noqa: UP031 - the filter's own formatting
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict[str, Any]) -> str:
    """attrs.html: an attribute False is left out, True is written without a value."""
    out = []
    for name, value in attrs.items():
        if value is not False:
            out.append(f" {_text(name)}" if value is True else f' {_text(name)}="{_stringformat(value)}"')
    return "".join(out)


def _input(widget: dict[str, Any]) -> str:
    value = widget["value"]
    shown = f' value="{_stringformat(value)}"' if value != None else ""  # noqa: E711 - the template's != None
    return f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"{shown}{_attrs(widget["attrs"])}>\n'


def _select_option(widget: dict[str, Any]) -> str:
    label = _text(widget["label"])
    return f'<option value="{_stringformat(widget["value"])}"{_attrs(widget["attrs"])}>{label}</option>\n'


def _input_option(widget: dict[str, Any]) -> str:
    element = _input(widget)
    if not widget.get("wrap_label"):
        return element + "\n"
    widget_id = widget["attrs"].get("id")
    label_for = f' for="{_text(widget_id)}"' if widget_id else ""
    return f'<label{label_for}>{element} {_text(widget["label"])}</label>\n'


def _option(option: dict[str, Any]) -> str:
    return WRITERS[option["template_name"]](option)


def _groups(widget: dict[str, Any], *, group: str, option: str, group_end: str) -> str:
    """The options of a choice widget, each group opened and closed as its template writes them."""
    out = []
    for name, options, _index in widget["optgroups"]:
        if name:
            out.append(group.format(_text(name)))
        out.extend(option.format(_option(each)) for each in options)
        if name:
            out.append(group_end)
    return "".join(out)


def _select(widget: dict[str, Any]) -> str:
    options = _groups(widget, group='\n  <optgroup label="{}">', option="\n  {}", group_end="\n  </optgroup>")
    return f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>{options}\n</select>\n'


def _multiple_input(widget: dict[str, Any]) -> str:
    widget_id, css = widget["attrs"].get("id"), widget["attrs"].get("class")
    shown_id = f' id="{_text(widget_id)}"' if widget_id else ""
    shown_class = f' class="{_text(css)}"' if css else ""
    options = _groups(widget, group="\n  <div><label>{}</label>", option="<div>\n    {}</div>", group_end="\n  </div>")
    return f"<div{shown_id}{shown_class}>{options}\n</div>\n"


def _then_newline(write: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    """A template that only includes another one adds the newline its file ends with."""
    return lambda widget: write(widget) + "\n"


# Template name -> writer; each of these templates holds only what its writer writes (a file that only includes
# input.html, multiple_input.html or input_option.html, then a newline).
WRITERS: dict[str, Callable[[dict[str, Any]], str]] = {
    f"{WIDGETS}input.html": _input,
    **{f"{WIDGETS}{name}.html": _then_newline(_input)
       for name in ("text", "hidden", "number", "search", "email", "url", "password", "tel", "date", "datetime",
                    "time", "color", "checkbox")},
    f"{WIDGETS}select.html": _select,
    f"{WIDGETS}select_option.html": _select_option,
    f"{WIDGETS}input_option.html": _input_option,
    f"{WIDGETS}checkbox_option.html": _then_newline(_input_option),
    f"{WIDGETS}radio_option.html": _then_newline(_input_option),
    f"{WIDGETS}multiple_input.html": _multiple_input,
    f"{WIDGETS}checkbox_select.html": _then_newline(_multiple_input),
    f"{WIDGETS}radio.html": _then_newline(_multiple_input),
}
_DJANGO_WIDGETS = Path(django.__file__).parent / "forms" / "templates" / WIDGETS


class PortalFormRenderer(DjangoTemplates):
    """Django's template form renderer, with the widget templates above written in Python."""

    def __init__(self) -> None:
        self._own: dict[str, bool] = {}

    def _written_in_python(self, template_name: str) -> bool:
        """Only while the name resolves to Django's own file: an app's template of that name is its template."""
        own = self._own.get(template_name)
        if own is None:
            origin = Path(self.get_template(template_name).origin.name)
            own = self._own[template_name] = origin == _DJANGO_WIDGETS / Path(template_name).name
        return own

    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is not None and template_name in WRITERS and self._uses_own_templates(widget, template_name):
            return WRITERS[template_name](widget).strip()
        return super().render(template_name, context, request=request)

    def _uses_own_templates(self, widget: dict[str, Any], template_name: str) -> bool:
        if not self._written_in_python(template_name):
            return False
        names = {option["template_name"] for _g, options, _i in widget.get("optgroups", ()) for option in options}
        return all(name in WRITERS and self._written_in_python(name) for name in names)
