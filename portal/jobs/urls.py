from django.urls import path

from . import views

app_name = "jobs"
urlpatterns = [
    path("", views.JobListView.as_view(), name="list"),
    path("connectivity-check/", views.start_connectivity_check, name="start_connectivity_check"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/log/", views.job_log, name="log"),
    path("<int:pk>/log/earlier/", views.job_log_earlier, name="log_earlier"),
    path("<int:pk>/log.txt", views.job_log_download, {"fmt": "txt"}, name="log_txt"),
    path("<int:pk>/log.json", views.job_log_download, {"fmt": "json"}, name="log_json"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
    path("<int:pk>/resume/", views.job_resume, name="resume"),
]
