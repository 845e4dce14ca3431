from django.urls import path

from . import views

app_name = "directory"
urlpatterns = [
    path("", views.search, name="search"),
    path("dn/", views.by_dn, name="by_dn"),
    path("objects/<uuid:guid>/", views.object_detail, name="object"),
]
