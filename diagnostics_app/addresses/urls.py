from django.urls import path

from . import views

urlpatterns = [
    path("address-repair/", views.address_repair, name="address_repair"),
    path("address-repair/proxycalc/", views.address_explain, name="address_explain"),
    path("address-repair/findings/<int:pk>/", views.address_finding, name="address_finding"),
    path("address-repair/scan/", views.address_start_scan, name="address_start_scan"),
    path("address-repair/fixes/plan/", views.address_plan_fix, name="address_plan_fix"),
    path("address-repair/fixes/<int:pk>/", views.address_fix, name="address_fix"),
    path("address-repair/fixes/<int:pk>/approve/", views.address_approve_fix, name="address_approve_fix"),
    path("address-repair/fixes/<int:pk>/reject/", views.address_reject_fix, name="address_reject_fix"),
    path("address-repair/fixes/<int:pk>/verify/", views.address_verify_fix, name="address_verify_fix"),
    path("address-repair/fixes/<int:pk>/undo/", views.address_undo_fix, name="address_undo_fix"),
]
