from django.urls import path

from . import views

app_name = "diagnostics_app"
urlpatterns = [
    path("address-repair/", views.address_repair, name="address_repair"),
    path("mfa/", views.mfa, name="mfa"),
    path("writeback/", views.writeback, name="writeback"),
]
