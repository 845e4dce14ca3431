"""What the job tests share: start a test job kind, read its log (the Helpdesk user is a fixture in
tests/conftest.py)."""

from portal.jobs.services import do_start_job


def start(kind, user, **params):
    return do_start_job(kind=kind, user=user, params=params, target="test")


def messages(job) -> list[str]:
    return list(job.log_lines.order_by("seq").values_list("message", flat=True))
