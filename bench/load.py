"""Benchmark: the portal under load. 20 signed-in people at once on the report and table pages of a lab
holding 100,000 users with their MFA snapshot and address findings, while a job runs and its live log
is polled.

Locust (bench/locust/portal_users.py), headless and bounded in time, drives the production web server
(gunicorn as `manage.py stack run` starts it: portal/stack.py web_service) on loopback 127.0.0.1:8012.
Every user signs in through the login form, then reads: the MFA report (first page, and a filtered
third page), MFA readiness, the DL inventory, the address findings, the jobs list, and polls a running
job's live log (a writer adds a line every 0.2 s as a job would).

The data lives in this bench's own database (var/bench/load; env BENCH_LOAD_USERS, default 100,000):
one MFA snapshot with a row per user, one address scan with a finding per four users, a distribution
list per ten users, 200 finished jobs. Seeded once straight into the tables the pages read (the lab
connectors are measured by bench/mfa_snapshot.py and bench/ad_scan.py) and reused while the count matches.

Before the clock starts the web server is warmed up: every page the users read (bench/locust/portal_pages.py) is
requested WARM_UP_ROUNDS times per worker process, as many at once as there are workers, and not counted. The run
measures steady-state serving: each worker has compiled its templates and computed the figures it keeps per
stored snapshot and scan, and the database file is in the OS page cache. What the first requests after a restart or
hours of idle cost is printed apart (the warm-up's slowest request), not mixed into the percentiles.

Prints requests/s, p50/p95/p99 per page and failures, against the goal of issue 17 (p95 under 300 ms for
every page, no failure, live log polls under 1 s) and the recorded baseline bench/baselines/load.json (the
first run; BENCH_LOAD_RECORD=1 records the current run as the new baseline). Env BENCH_LOAD_SECONDS
(default 120) and BENCH_LOAD_CONCURRENCY (default 20). Run with `make bench` (Redis is started by make).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Its own database whatever the var dir: 100,000 rows must never land in the tests' or the demo's.
VAR = Path(os.environ.get("BENCH_LOAD_VAR_DIR", str(ROOT / "var" / "bench" / "load")))
os.environ["DIROPS_VAR_DIR"] = str(VAR)
# Signing in is the login form with a password: the second factor has its own tests.
os.environ["LOCAL_ACCOUNTS_TOTP"] = "0"
# Plain http on loopback, as `make demo` serves (production's https redirect and secure cookies off).
os.environ.setdefault("LAB_MODE", "1")
BIND = os.environ.get("BENCH_LOAD_BIND", "127.0.0.1:8012")
os.environ["ALLOWED_HOSTS"] = f"{BIND.rsplit(':', 1)[0]},localhost"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

USERS = int(os.environ.get("BENCH_LOAD_USERS", "100000"))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "120"))
CONCURRENCY = int(os.environ.get("BENCH_LOAD_CONCURRENCY", "20"))
BASELINE = ROOT / "bench" / "baselines" / "load.json"
MARK = "bench/load seed: {users} users"
PASSWORD = "bench-load-only-password-1"
GOAL_P95_MS, GOAL_LOG_MS = 300, 1000
BATCH = 5000
WARM_UP_ROUNDS = 3


def seed() -> None:
    import random
    import uuid
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from diagnostics_app.addresses.choices import FindingRule, FindingSeverity, FindingState, ScanStatus
    from diagnostics_app.mfa.choices import MfaClass, PolicyOutcome
    from diagnostics_app.models import AddressFinding, AddressScan, MfaSnapshot, MfaUserRow
    from migrations_app.choices import ListKind, ListState
    from migrations_app.models import DistributionList
    from portal.jobs.choices import JobStatus
    from portal.jobs.models import Job

    rnd = random.Random(17)
    now = timezone.now()
    departments = [f"Department {n:02}" for n in range(40)]
    groups = {f"group-{n}": f"Group {n}" for n in range(30)}
    classes = [c.value for c in MfaClass if c != MfaClass.NOT_EVALUATED]
    outcomes = [PolicyOutcome.ABLE.value, PolicyOutcome.INTERRUPTED.value, PolicyOutcome.NOT_COVERED.value]
    with transaction.atomic():
        for model in (MfaSnapshot, AddressScan, DistributionList, Job):
            model.objects.all().delete()
        snapshot = MfaSnapshot.objects.create(taken_at=now, total_users=USERS, message=MARK.format(users=USERS),
                                              groups=groups, departments=departments, policies_read=True,
                                              security_defaults=False)
        counts, outcome_counts = {}, {}
        for start in range(0, USERS, BATCH):
            rows = []
            for n in range(start, min(start + BATCH, USERS)):
                cls, outcome = rnd.choice(classes), rnd.choice(outcomes)
                counts[cls] = counts.get(cls, 0) + 1
                outcome_counts[outcome] = outcome_counts.get(outcome, 0) + 1
                usable = [] if cls in ("not_registered", "not_usable") else ["authenticator"]
                mine = rnd.sample(sorted(groups), 2)
                rows.append(MfaUserRow(
                    snapshot=snapshot, user_id=str(uuid.UUID(int=n + 1)), upn=f"user{n:06}@corp.example",
                    display_name=f"User {n:06}", user_type="Member", enabled=True, licensed=True,
                    department=rnd.choice(departments), is_admin=n % 500 == 0, classification=cls,
                    can_satisfy_mfa=bool(usable), usable=usable, registered=usable,
                    usable_key="," + ",".join(usable) + "," if usable else "", group_ids=mine,
                    groups_key="," + ",".join(mine) + ",", policy_outcome=outcome))
            MfaUserRow.objects.bulk_create(rows)
        snapshot.counts, snapshot.outcome_counts = counts, outcome_counts
        snapshot.save(update_fields=["counts", "outcome_counts"])

        scan = AddressScan.objects.create(status=ScanStatus.COMPLETE, finished_at=now, objects_read=USERS,
                                          scope=["OU=Staff,DC=corp,DC=example"])
        rules, severities = list(FindingRule), list(FindingSeverity)
        findings = USERS // 4
        for start in range(0, findings, BATCH):
            AddressFinding.objects.bulk_create([AddressFinding(
                scan=scan, key=f"{n:064x}", state=FindingState.NEW, first_seen=now,
                dn=f"CN=User {n * 4:06},OU=Staff,DC=corp,DC=example", ou="OU=Staff,DC=corp,DC=example",
                object_class="user", attribute="proxyAddresses", value=f"smtp:user{n * 4:06}@corp.example",
                rule=rules[n % len(rules)].value, severity=severities[n % len(severities)].value,
                explanation="Seeded by bench/load.py.") for n in range(start, min(start + BATCH, findings))])
        scan.findings_total = findings
        scan.save(update_fields=["findings_total"])

        lists = USERS // 10
        kinds = list(ListKind)
        for start in range(0, lists, BATCH):
            DistributionList.objects.bulk_create([DistributionList(
                guid=uuid.UUID(int=n + 1), dn=f"CN=List {n:05},OU=Lists,DC=corp,DC=example", name=f"List {n:05}",
                display_name=f"List {n:05}", mail=f"list{n:05}@corp.example", alias=f"list{n:05}",
                ou="OU=Lists,DC=corp,DC=example", kind=kinds[n % len(kinds)].value, state=ListState.SYNCED,
                member_count=n % 300, inventoried_at=now) for n in range(start, min(start + BATCH, lists))])
        Job.objects.bulk_create([Job(kind="connectivity_check", name=f"Finished job {n}", status=JobStatus.SUCCEEDED,
                                     started_at=now - timedelta(minutes=n), finished_at=now - timedelta(minutes=n))
                                 for n in range(200)])


def prepare() -> tuple[list[str], int]:
    from django.core.management import call_command
    from django.utils import timezone

    from diagnostics_app.models import MfaSnapshot
    from portal.accounts.services import do_ensure_user
    from portal.jobs.choices import JobStatus
    from portal.jobs.models import Job

    VAR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    if not MfaSnapshot.objects.filter(message=MARK.format(users=USERS)).exists():
        started = time.perf_counter()
        seed()
        print(f"  (seeded {USERS:,} users' MFA rows, {USERS // 4:,} address findings, {USERS // 10:,} lists in "
              f"{time.perf_counter() - started:.0f}s under {VAR}; later runs reuse them)")
    names = [f"bench-load-{n}" for n in range(CONCURRENCY)]
    for name in names:  # read-only pages: the Auditor role reads every one of them
        do_ensure_user(username=name, password=PASSWORD, roles=["Auditor"])
    live = Job.objects.create(kind="connectivity_check", name="bench/load live job", status=JobStatus.RUNNING,
                              started_at=timezone.now(), heartbeat_at=timezone.now())
    return names, live.pk


def _log_writer(job_pk: int, stop: threading.Event) -> None:
    """A running job: a line every 0.2 s and its heartbeat, as JobRunner writes them."""
    from django.db import connection
    from django.utils import timezone

    from portal.jobs.models import Job, JobLogLine

    seq = 0
    while not stop.wait(0.2):
        seq += 1
        JobLogLine.objects.create(job_id=job_pk, seq=seq, time=timezone.now(), message=f"step {seq}: still working")
        Job.objects.filter(pk=job_pk).update(heartbeat_at=timezone.now())
    Job.objects.filter(pk=job_pk).update(status="succeeded", finished_at=timezone.now())
    connection.close()


def _sign_in_all(names: list[str]) -> tuple[list[str], list[float]]:
    """Each user signs in through the login form before the clock starts: a password hash is meant to
    be slow (PBKDF2), and 20 of them at once on two cores would be what the run measures."""
    import re

    import requests

    sessions, seconds = [], []
    for name in names:
        with requests.Session() as http:
            started = time.perf_counter()
            page = http.get(f"http://{BIND}/login/", timeout=60)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            done = http.post(f"http://{BIND}/login/", data={"csrfmiddlewaretoken": token, "username": name,
                                                            "password": PASSWORD},
                             headers={"Referer": f"http://{BIND}/login/"}, allow_redirects=False, timeout=60)
            seconds.append(time.perf_counter() - started)
            if done.status_code != 302 or settings.SESSION_COOKIE_NAME not in http.cookies:
                raise SystemExit(f"{name} could not sign in ({done.status_code})")
            sessions.append(http.cookies[settings.SESSION_COOKIE_NAME])
    return sessions, seconds


def _warm_up(cookie: str, live_job: int) -> tuple[int, float]:
    """Every page WARM_UP_ROUNDS times per web server worker, as many at once as there are workers, each on its own
    connection (so that every worker gets its share), before the clock starts; how many, and the slowest."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from bench.locust.portal_pages import LIVE_LOG_URL, PAGES
    from portal.stack import WEB_ARGV

    workers = int(WEB_ARGV[WEB_ARGV.index("--workers") + 1])
    urls = [*PAGES.values(), LIVE_LOG_URL.format(job=live_job, after=0)]

    def get(url: str) -> float:
        started = time.perf_counter()
        response = requests.get(f"http://{BIND}{url}", cookies={settings.SESSION_COOKIE_NAME: cookie},
                                allow_redirects=False, timeout=120)
        if response.status_code != 200:
            raise SystemExit(f"warm-up: {url} answered {response.status_code}")
        return time.perf_counter() - started

    seconds = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for url in urls:
            seconds += pool.map(get, [url] * (WARM_UP_ROUNDS * workers))
    return len(seconds), max(seconds)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the web server: its master and its workers, as /proc counts it."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1] is the parent's pid
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _machine_times() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine (/proc/stat): the hypervisor's share of the cores is time no
    process here could use, which the load average does not show."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


CPU: dict[str, float] = {}
STEAL: dict[str, tuple[int, int]] = {}
WARM_UP: dict[str, float] = {}


def run(names: list[str], live_job: int) -> tuple[list[dict], list[float]]:
    from portal import stack

    web = stack.web_service(BIND)
    web.name = "bench-load-web"
    pid, _ = stack.start(web)
    stop = threading.Event()
    writer = threading.Thread(target=_log_writer, args=(live_job, stop), daemon=True)
    writer.start()
    prefix = VAR / "locust"
    try:
        cookies, sign_in = _sign_in_all(names)
        WARM_UP.update(zip(("requests", "slowest"), _warm_up(cookies[0], live_job), strict=True))
        env = {**os.environ, "BENCH_LOAD_SESSIONS": ",".join(cookies), "BENCH_LOAD_LIVE_JOB": str(live_job),
               "BENCH_LOAD_SESSION_COOKIE": settings.SESSION_COOKIE_NAME}
        CPU["before"] = _cpu_seconds(pid)
        STEAL["before"] = _machine_times()
        out = subprocess.run(
            [str(Path(sys.executable).with_name("locust")), "-f", str(ROOT / "bench" / "locust" / "portal_users.py"),
             "--headless", "--users", str(CONCURRENCY), "--spawn-rate", str(CONCURRENCY), "--run-time", f"{SECONDS}s",
             "--stop-timeout", "10", "--host", f"http://{BIND}", "--csv", str(prefix), "--only-summary",
             "--loglevel", "WARNING", "--exit-code-on-error", "0"],
            env=env, capture_output=True, text=True, timeout=SECONDS + 120)
        CPU["after"] = _cpu_seconds(pid)
        STEAL["after"] = _machine_times()
    finally:
        stop.set()
        writer.join(timeout=10)
        stack.stop(web)
    if out.returncode != 0:
        raise SystemExit(f"locust failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    with open(f"{prefix}_stats.csv", newline="") as f:
        return sign_in, [{"page": r["Name"], "requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                 "rps": float(r["Requests/s"]), "p50": float(r["50%"]), "p95": float(r["95%"]),
                 "p99": float(r["99%"])} for r in csv.DictReader(f)]


def main() -> None:
    names, live_job = prepare()
    sign_in, rows = run(names, live_job)
    pages = {r["page"]: r for r in rows if r["page"] != "Aggregated"}
    total = next(r for r in rows if r["page"] == "Aggregated")
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else None
    print(f"Portal under load: {CONCURRENCY} signed-in users for {SECONDS}s, lab of {USERS:,} users "
          f"(gunicorn {' '.join(__import__('portal.stack', fromlist=['WEB_ARGV']).WEB_ARGV[2:])}, {BIND})")
    print(f"  machine load average while it ran: {os.getloadavg()[1]:.1f} over 5 min on {os.cpu_count()} cores "
          f"(the figures are this machine's, shared or not)")
    if "after" in STEAL:
        stolen, total_jiffies = (a - b for a, b in zip(STEAL["after"], STEAL["before"], strict=True))
        print(f"  CPU time the hypervisor took from this virtual machine while it ran: "
              f"{100 * stolen / max(total_jiffies, 1):.0f}% (steal; the page times include waiting for it)")
    if "after" in CPU and total["requests"]:
        per_request = (CPU["after"] - CPU["before"]) / total["requests"]
        print(f"  web server CPU: {per_request * 1000:.0f} ms per request on average (user + system, its master and "
              f"workers): what the pages cost whatever else runs; {os.cpu_count()} free cores would serve about "
              f"{os.cpu_count() / per_request:.0f} requests/s" if per_request else "  web server CPU: not measured")
    print(f"  warm-up before the clock (not counted): {WARM_UP['requests']:.0f} requests, every page "
          f"{WARM_UP_ROUNDS} times per worker; the slowest took {WARM_UP['slowest'] * 1000:.0f} ms")
    print(f"  signing in through the login form, one after the other before the run: median "
          f"{sorted(sign_in)[len(sign_in) // 2] * 1000:.0f} ms, slowest {max(sign_in) * 1000:.0f} ms")
    print(f"  {'page':32} {'requests':>8} {'req/s':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'fail':>5}  p95 vs baseline")
    for name, r in pages.items():
        base = (baseline or {}).get("pages", {}).get(name)
        ratio = f"{r['p95'] / base['p95']:.2f}x" if base and base["p95"] else "—"
        print(f"  {name:32} {r['requests']:8,} {r['rps']:6.1f} {r['p50']:5.0f}ms {r['p95']:5.0f}ms "
              f"{r['p99']:5.0f}ms {r['failures']:5}  {ratio}")
    print(f"  {'all':32} {total['requests']:8,} {total['rps']:6.1f} {total['p50']:5.0f}ms {total['p95']:5.0f}ms "
          f"{total['p99']:5.0f}ms {total['failures']:5}")
    slow = [n for n, r in pages.items() if n != "sign-in" and r["p95"] > GOAL_P95_MS]
    log = pages.get("Live job log poll")
    print(f"  goal (issue 17): p95 under {GOAL_P95_MS} ms on every page: "
          f"{'met' if not slow else 'NOT met on ' + ', '.join(slow)}; failures: {total['failures']}; "
          f"live log p99 under {GOAL_LOG_MS} ms: {'met' if log and log['p99'] < GOAL_LOG_MS else 'NOT met'}")
    if baseline is not None:
        print(f"  baseline ({baseline['recorded']}, {baseline['users']:,} users, {baseline['seconds']}s, load average "
              f"{baseline.get('loadavg_5min', '?')}): "
              f"{baseline['rps']:.1f} req/s; now {total['rps'] / baseline['rps']:.2f}x the throughput")
    if total["failures"]:
        print(f"  failures, first ones: {(VAR / 'locust_failures.csv').read_text()[:1500]}")
    elif baseline is None or os.environ.get("BENCH_LOAD_RECORD") == "1":
        BASELINE.write_text(json.dumps({
            "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "users": USERS, "seconds": SECONDS,
            "concurrency": CONCURRENCY, "loadavg_5min": round(os.getloadavg()[1], 1), "cores": os.cpu_count(),
            "rps": total["rps"], "pages": pages,
            "cpu_ms_per_request": round(1000 * (CPU["after"] - CPU["before"]) / total["requests"], 1)
            if "after" in CPU and total["requests"] else None}, indent=1) + "\n")
        print(f"  recorded this run as the baseline: {BASELINE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
