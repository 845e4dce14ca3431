"""Pages of the diagnostics areas not built yet; each built area has its own views in its sub-package."""

from django.shortcuts import render

from portal.accounts.permissions import requires


def _placeholder(request, area: str, promise: str):
    return render(request, "area_not_built.html", {"area": area, "promise": promise})


@requires("accounts.view_address_repair")
def address_repair(request):
    return _placeholder(request, "Address repair",
                        "Explain and fix why a mail or proxyAddresses change never reaches Exchange Online.")
