"""Registers each area's JobRunner subclasses (the jobs app imports every app's `jobs` module)."""

from .addresses import jobs as address_jobs  # noqa: F401
from .mfa import jobs as mfa_jobs  # noqa: F401
from .writeback import jobs as writeback_jobs  # noqa: F401
