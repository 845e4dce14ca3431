"""The migration of one list, as a checkpointed state machine.

Every step is idempotent: it looks at both directories first and does only what is still missing, so
a run resumed after a worker crash (the job runner skips steps whose checkpoint exists) or a step
repeated after an ambiguous failure ends in the same state. What later steps need is read from the
backup taken in the first steps, never from the directory mid-way, where the list is half-moved.

Until the original group is disabled on-premises (``disable_original``) every failure rolls back:
the temporary (or already renamed) cloud list is removed and the group moves back to its OU, so the
sync brings its cloud twin back. After that point the list lives in the cloud; a failing step is a
post-create error: logged, listed in the report, and the migration ends "migrated with warnings".

The package: ``common`` (the steps, connectors, preflight, delta sync, backup documents), ``process`` (the run, its
helpers, the rollback) and the steps by phase: ``prepare``, ``cutover``, ``finish``.
"""

from .common import (
    CLOUD_DEPENDENCY_PROPERTIES,
    DEPENDENTS_PENDING,
    POINT_OF_NO_RETURN,
    STAMP,
    STEPS,
    Connectors,
    MigrationError,
    mark_inventory,
    non_sync_ou_for,
    object_backup,
    open_connectors,
    run_preflight,
    scan_wave_dependents,
    start_delta_sync,
)
from .process import MigrationProcess

__all__ = ["CLOUD_DEPENDENCY_PROPERTIES", "DEPENDENTS_PENDING", "POINT_OF_NO_RETURN", "STAMP", "STEPS", "Connectors",
           "MigrationError", "MigrationProcess", "mark_inventory", "non_sync_ou_for", "object_backup",
           "open_connectors",
           "run_preflight", "scan_wave_dependents", "start_delta_sync"]
