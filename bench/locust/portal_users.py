"""Locust users for bench/load.py: each holds the session of a person signed in through the login form, reads the
report and table pages, and polls a running job's live log as the job page does (every poll asks for the
lines after the last one it saw). Requests are named per page, so the figures are per page.
"""

from __future__ import annotations

import itertools
import os
import re

from locust import HttpUser, between, task
from portal_pages import LIVE_LOG, LIVE_LOG_URL, PAGES  # locust puts this file's folder on sys.path

SESSIONS = os.environ["BENCH_LOAD_SESSIONS"].split(",")
COOKIE = os.environ["BENCH_LOAD_SESSION_COOKIE"]
LIVE_JOB = int(os.environ["BENCH_LOAD_LIVE_JOB"])
_next = itertools.count()
SEQ = re.compile(r'data-seq="(\d+)"')


class PortalUser(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        # Signed in through the login form by bench/load.py before the clock started: one session each.
        self.client.cookies.set(COOKIE, SESSIONS[next(_next) % len(SESSIONS)])
        self.last_seq = 0

    def _get(self, url: str, name: str):
        with self.client.get(url, name=name, catch_response=True, allow_redirects=False) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.headers.get('Location', '')}")
            return response

    def _page(self, name: str):
        return self._get(PAGES[name], name)

    @task(3)
    def mfa_report(self):
        self._page("MFA report")

    @task(1)
    def mfa_report_filtered(self):
        self._page("MFA report, filtered page 3")

    @task(2)
    def readiness(self):
        self._page("MFA readiness")

    @task(2)
    def dl_inventory(self):
        self._page("DL inventory")

    @task(2)
    def address_findings(self):
        self._page("Address findings")

    @task(2)
    def jobs(self):
        self._page("Jobs list")

    @task(6)
    def live_log(self):
        response = self._get(LIVE_LOG_URL.format(job=LIVE_JOB, after=self.last_seq), LIVE_LOG)
        seqs = SEQ.findall(response.text or "")
        if seqs:
            self.last_seq = int(seqs[-1])
