"""The diagnostics index: the areas of this app the user may open (each area's pages live in its sub-package)."""

from django.shortcuts import render

from portal.accounts.context_processors import AREAS, nav_items
from portal.accounts.permissions import requires


@requires("accounts.view_diagnostics")
def index(request):
    areas = [item for item in nav_items(AREAS, user=request.user) if item["url_name"].startswith("diagnostics_app:")]
    return render(request, "diagnostics_app/index.html", {"areas": areas})
