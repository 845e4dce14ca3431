from django.apps import AppConfig


class LabConfig(AppConfig):
    """The rehearsal lab (DESIGN.md section 6): stands in for AD and the Microsoft cloud."""

    name = "portal.lab"
    label = "lab"
    verbose_name = "Rehearsal lab"
