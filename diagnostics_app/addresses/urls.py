from django.urls import path

from . import views

urlpatterns = [
    path("address-repair/", views.address_repair, name="address_repair"),
    path("address-repair/findings/<int:pk>/", views.address_finding, name="address_finding"),
    path("address-repair/scan/", views.address_start_scan, name="address_start_scan"),
]
