"""Benchmark: job log lines from being logged to being on screen, and how many lines/s the store takes.

Measures, on this machine:
  1. store throughput: 5 processes, one job each, logging as fast as they can through JobRunner.log
     (each line committed on its own, as in production); aggregate lines/s.
  2. latency: 5 jobs logging concurrently (20 lines/s each) while 5 browser pages (Debian chromium,
     Playwright) show their live logs; for every line, browser arrival time minus the time it was
     logged (the line's own timestamp); median and p95.
Baselines it names: the goals of the foundation issue, 2,000 lines/s and a p95 of 1 s.

Run with `make bench` (Redis on loopback is started by make).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DIROPS_VAR_DIR", str(ROOT / "var" / "bench"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

JOBS = 5
THROUGHPUT_LINES = 2000  # per job
LATENCY_SECONDS = 10
LATENCY_RATE = 20  # lines/s per job
GOAL_LINES_PER_S = 2000.0
GOAL_P95_S = 1.0
WEB = "127.0.0.1:8011"


def _make_job(name: str):
    from django.utils import timezone

    from portal.jobs.choices import JobStatus
    from portal.jobs.models import Job

    return Job.objects.create(kind="connectivity_check", name=name, status=JobStatus.RUNNING,
                              started_at=timezone.now(), heartbeat_at=timezone.now())


def _writer(job_pk: int, lines: int, rate: float | None, start_at: float) -> None:
    django.setup()
    from django.db import connection
    from django.utils import timezone

    from portal.jobs.choices import JobStatus
    from portal.jobs.models import Job
    from portal.jobs.runner import JobRunner

    runner = JobRunner(Job.objects.get(pk=job_pk))
    while time.time() < start_at:
        time.sleep(0.001)
    for n in range(lines):
        runner.info(f"bench line {n}")
        if rate:
            Job.objects.filter(pk=job_pk).update(heartbeat_at=timezone.now()) if n % 20 == 0 else None
            time.sleep(max(0.0, start_at + (n + 1) / rate - time.time()))
    Job.objects.filter(pk=job_pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    connection.close()


def _run_writers(job_pks: list[int], lines: int, rate: float | None) -> float:
    ctx = mp.get_context("fork")
    start_at = time.time() + 1.0
    procs = [ctx.Process(target=_writer, args=(pk, lines, rate, start_at)) for pk in job_pks]
    from django.db import connections

    connections.close_all()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a writer process failed (exit {p.exitcode})")
    return time.time() - start_at


def bench_throughput() -> float:
    pks = [_make_job(f"throughput {i}").pk for i in range(JOBS)]
    seconds = _run_writers(pks, THROUGHPUT_LINES, rate=None)
    return JOBS * THROUGHPUT_LINES / seconds


def bench_latency() -> list[float]:
    from playwright.sync_api import sync_playwright

    from portal import stack
    from portal.accounts.services import do_ensure_user

    do_ensure_user(username="bench", password="bench-only-password-1", roles=["Helpdesk"])
    web = stack.web_service(WEB)
    web.name = "bench-web"
    stack.start(web)
    pks = [_make_job(f"latency {i}").pk for i in range(JOBS)]
    observer = """() => {
        window.__lat = [];
        new MutationObserver(muts => { const now = Date.now();
          for (const m of muts) for (const n of m.addedNodes)
            if (n.nodeType === 1 && n.classList.contains('line')) window.__lat.push(now - Number(n.dataset.logged));
        }).observe(document.getElementById('log'), {childList: true});
    }"""
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"])
            context = browser.new_context(base_url=f"http://{WEB}")
            login = context.new_page()
            login.goto("/login/")
            login.fill("#id_username", "bench")
            login.fill("#id_password", "bench-only-password-1")
            login.click("button[type=submit]")
            login.wait_for_url(f"http://{WEB}/")
            pages = []
            for pk in pks:
                page = context.new_page()
                page.goto(f"/jobs/{pk}/")
                page.evaluate(observer)
                pages.append(page)
            _run_writers(pks, LATENCY_SECONDS * LATENCY_RATE, rate=LATENCY_RATE)
            for page in pages:
                page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=30_000)
            latencies = [ms / 1000 for page in pages for ms in page.evaluate("window.__lat")]
            browser.close()
    finally:
        stack.stop(web)
    expected = JOBS * LATENCY_SECONDS * LATENCY_RATE
    if len(latencies) != expected:
        raise SystemExit(f"saw {len(latencies)} lines arrive in the browsers, expected {expected}")
    return latencies


def main() -> None:
    call_command("migrate", verbosity=0)
    rate = bench_throughput()
    print(f"job log store: {JOBS} concurrent jobs x {THROUGHPUT_LINES} lines, one commit per line")
    print(f"  throughput: {rate:,.0f} lines/s  (baseline: goal {GOAL_LINES_PER_S:,.0f} lines/s; "
          f"ratio {rate / GOAL_LINES_PER_S:.2f})")
    latencies = bench_latency()
    median = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[18]
    print(f"live log latency: {JOBS} jobs x {LATENCY_RATE} lines/s for {LATENCY_SECONDS}s, {JOBS} chromium pages, "
          f"{len(latencies)} lines")
    print(f"  logged -> in the browser: median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms  (baseline: goal p95 {GOAL_P95_S:.1f} s; ratio {p95 / GOAL_P95_S:.2f})")
    ok = rate >= GOAL_LINES_PER_S and p95 < GOAL_P95_S
    print("  goals met" if ok else "  GOALS NOT MET")


if __name__ == "__main__":
    main()
