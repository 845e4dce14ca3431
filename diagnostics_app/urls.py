from django.urls import path

from . import views
from .addresses import urls as address_urls
from .mfa import urls as mfa_urls
from .writeback import urls as writeback_urls

# One namespace for the app; each area's sub-package lists its own paths.
app_name = "diagnostics_app"
urlpatterns = [
    path("", views.index, name="index"),
    *address_urls.urlpatterns,
    *mfa_urls.urlpatterns,
    *writeback_urls.urlpatterns,
]
