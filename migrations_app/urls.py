from django.urls import path

from . import views

app_name = "migrations_app"
urlpatterns = [path("", views.home, name="home")]
