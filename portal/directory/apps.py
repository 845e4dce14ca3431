from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    """Read-only view of on-premises Active Directory, for every role."""

    name = "portal.directory"
    label = "directory"
    verbose_name = "Directory"
