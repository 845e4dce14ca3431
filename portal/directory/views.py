from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from migrations_app.selectors import migrations_for_address
from portal.accounts.permissions import requires
from portal.connectors import ad
from portal.connectors.registry import NotConfigured

from .forms import DirectorySearchForm, DnForm
from .selectors import SecretObject, directory_object, directory_search, guid_for_dn


def _unreachable(request, exc: Exception, *, title: str):
    """AD down or not configured: say so plainly, keep the technical detail folded."""
    if isinstance(exc, NotConfigured):
        what, why = "The portal does not know where Active Directory is.", str(exc)
    else:
        what = "Active Directory is unreachable right now, so nothing can be read from it."
        why = "Try again in a minute; if it persists, an Administrator can run a connectivity check."
    return render(request, "directory/unreachable.html", {"title": title, "what": what, "why": why,
                                                          "detail": str(exc)}, status=503)


@requires("accounts.view_directory")
@require_GET
def search(request):
    form = DirectorySearchForm(request.GET or None)
    context = {"form": form, "dn_form": DnForm()}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            context["result"] = directory_search(text=data["q"], kinds=data["kinds"], page=data["page"] or 1)
            # A migrated list's address lives on in Exchange Online: say so and lead to its migration.
            context["migrations"] = migrations_for_address(data["q"])
        except (ad.ServerDown, NotConfigured) as exc:
            return _unreachable(request, exc, title="Directory")
        except ad.InvalidFilter as exc:
            form.add_error("q", str(exc))
    return render(request, "directory/search.html", context)


@requires("accounts.view_directory")
@require_GET
def object_detail(request, guid):
    try:
        member_page = max(1, int(request.GET.get("members_page", "1")))
    except ValueError:
        member_page = 1
    try:
        view = directory_object(guid=str(guid), member_page=member_page)
    except ad.NotFound:
        raise Http404("no such object") from None
    except SecretObject as exc:
        return render(request, "directory/refused.html", {"object_class": exc.object_class}, status=403)
    except (ad.ServerDown, NotConfigured) as exc:
        return _unreachable(request, exc, title="Directory object")
    return render(request, "directory/object.html", {"view": view, "obj": view.obj})


@requires("accounts.view_directory")
@require_GET
def by_dn(request):
    """Open an object from a DN (a member link, or one pasted by a person): parsed before use."""
    form = DnForm(request.GET)
    if form.is_valid():
        try:
            return redirect("directory:object", guid=guid_for_dn(dn=form.cleaned_data["dn"]))
        except ad.InvalidDn as exc:
            form.add_error("dn", f"This is not a valid distinguished name: {exc}")
        except ad.NotFound:
            form.add_error("dn", "No object has this distinguished name.")
        except (ad.ServerDown, NotConfigured) as exc:
            return _unreachable(request, exc, title="Directory")
    return render(request, "directory/search.html", {"form": DirectorySearchForm(), "dn_form": form}, status=400)
