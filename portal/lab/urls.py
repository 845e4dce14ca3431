from django.urls import path

from . import views

app_name = "lab"
urlpatterns = [
    path("", views.home, name="home"),
    path("sync/", views.run_sync, name="run_sync"),
    path("sync/wizard/", views.sync_wizard, name="sync_wizard"),
]
