"""Pages of the diagnostics areas not built yet; each built area has its own views in its sub-package."""

from django.shortcuts import render

from portal.accounts.permissions import requires


def _placeholder(request, area: str, promise: str):
    return render(request, "area_not_built.html", {"area": area, "promise": promise})


@requires("accounts.view_writeback_plan")
def writeback(request):
    return _placeholder(request, "Writeback rename",
                        "Plan the switch of group writeback to cloud display names without deleting groups.")
