"""The RQ worker the portal runs (settings.RQ["WORKER_CLASS"]): RQ's own, plus the job sweep in its
maintenance turn, so no separate scheduler process is needed for nothing to wait for ever."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string
from rq.worker import Worker

logger = logging.getLogger("portal.jobs")


class PortalWorker(Worker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", settings.JOB_SWEEP_SECONDS)
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # RQ checks whether maintenance is due only between jobs or when its blocking dequeue times out, which
        # it does after worker_ttl - 15 s (405 s by default): an idle worker swept every ~7 minutes, whatever
        # JOB_SWEEP_SECONDS said, and a lost job waited that long to be queued again.
        return max(1, min(super().dequeue_timeout, int(self.maintenance_interval)))

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from .services import do_sweep_jobs

        close_old_connections()
        try:
            swept = do_sweep_jobs()
            if any(swept.values()):
                logger.info("job sweep: %s", swept)
            for hook in settings.JOB_SWEEP_HOOKS:
                import_string(hook)()
        except Exception:  # noqa: BLE001 - a failed sweep is retried at the next turn; the worker goes on
            logger.warning("job sweep failed", exc_info=True)
        finally:
            # The work horse is forked from this process: it must not inherit an open database connection.
            connections.close_all()
