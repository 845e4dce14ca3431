from django.shortcuts import render

from portal.accounts.permissions import requires


@requires("accounts.view_dl_migration")
def home(request):
    return render(request, "area_not_built.html", {
        "area": "DL migration",
        "promise": "Turn synced on-premises distribution lists into cloud-only Exchange Online lists: "
                   "inventory, preflight, backup, hybrid mail flow, rollback and approved batches.",
    })
