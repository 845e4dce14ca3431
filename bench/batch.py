"""Benchmark: a signed batch of nested distribution lists run in the lab on real RQ workers.

The issue's setting: BENCH_BATCH_LISTS lists (default 200) nested BENCH_BATCH_DEPTH levels deep (default 3:
each list of a level but the first contains one list of the level below), sizes spread geometrically from 10
to 5,000 members (slices of the seed's 5,200-member list), BENCH_BATCH_WORKERS workers (default 2), the demo's
sync latency (3 s), its own lab (Samba on 127.0.0.11, lab cloud on 127.0.0.1:8468, var/bench/batch/lab,
seeded once, reused; its servers stopped at the end unless they were running before). The batch is built,
preflighted, submitted, approved and scheduled through the same services as the pages. Measures:

  - wall time from Schedule to the batch's end, and lists per minute;
  - delta syncs triggered: the sync server's run history during the run;
  - Exchange Online calls per member: every InvokeCommand the workers made, counted in Redis by this
    module, loaded into each worker through JOB_EXTRA_MODULES.

Baseline it names (the issue's): one delta sync per list, lists one at a time (the goal: at most depth + 1
syncs), and one Exchange call per member (the goal: at most 1/100 call per member). Prints both ratios.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNTER = "bench:batch:exchange-calls"
BY_CMDLET = COUNTER + ":by-cmdlet"

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DIROPS_VAR_DIR", str(ROOT / "var" / "bench" / "batch"))
    os.environ["LAB_DIR"] = os.environ.get("BENCH_BATCH_LAB_DIR", str(ROOT / "var" / "bench" / "batch" / "lab"))
    os.environ["LAB_MODE"] = "1"
    os.environ.setdefault("LAB_AD_HOST", "127.0.0.11")
    os.environ.setdefault("LAB_CLOUD_PORT", "8468")
    os.environ.setdefault("LAB_SYNC_LATENCY_SECONDS", "3")  # the demo's (Makefile: demo)
    os.environ.setdefault("DL_DELETION_POLL_SECONDS", "1")
    os.environ.setdefault("DL_BATCH_POLL_SECONDS", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
elif os.environ.get("BENCH_BATCH_COUNT"):
    # Loaded by a worker (JOB_EXTRA_MODULES=bench.batch): count each Exchange Online call in Redis.
    import redis

    from portal.connectors import exchange as _exo

    _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    _post = _exo.ExchangeOnline._post

    def _counted(self, url, body, cmdlet, *args, **kwargs):
        _redis.incr(COUNTER)
        _redis.hincrby(BY_CMDLET, cmdlet, 1)
        return _post(self, url, body, cmdlet, *args, **kwargs)

    _exo.ExchangeOnline._post = _counted

LISTS = int(os.environ.get("BENCH_BATCH_LISTS", "200"))
DEPTH = int(os.environ.get("BENCH_BATCH_DEPTH", "3"))
WORKERS = int(os.environ.get("BENCH_BATCH_WORKERS", "2"))
BIG = "all-company-announcements@contoso.com"


def sizes(count: int) -> list[int]:
    """10 … 5,000 members, geometric: most lists small, a few large, as in an organisation."""
    if count == 1:
        return [5000]
    return [round(10 * (500 ** (i / (count - 1)))) for i in range(count)]


def build_lists(manifest) -> list[tuple[str, str, int, int]]:
    """(mail, dn, level, members) per list; level 0 holds no list of the batch."""
    import uuid

    from portal.connectors.ad import recipients
    from portal.connectors.registry import active_directory, entra_connect

    run = uuid.uuid4().hex[:6]
    levels = [i % DEPTH for i in range(LISTS)]
    made: list[tuple[str, str, int, int]] = []
    with active_directory() as directory:
        members = list(directory.iter_values(recipients.find_by_address(directory, BIG)[0].dn, "member"))
        for i, (level, size) in enumerate(zip(levels, sizes(LISTS), strict=True)):
            alias = f"bb{run}-{i:03d}"
            dn = directory.create_group(parent=manifest.ous["groups"], name=f"Bench batch {alias}",
                                        sam_account_name=alias, mail=f"{alias}@contoso.com", alias=alias,
                                        attributes={"proxyAddresses": [f"SMTP:{alias}@contoso.com"],
                                                    "msExchRecipientTypeDetails": 256})
            directory.add_values(dn, "member", members[:size], batch_size=1000)
            made.append((f"{alias}@contoso.com", dn, level, size))
        # Each list of level n > 0 contains one list of level n - 1: nesting depth DEPTH.
        below = {lvl: [m for m in made if m[2] == lvl] for lvl in range(DEPTH)}
        for n, (_, dn, level, _) in enumerate(made):
            if level and below[level - 1]:
                child = below[level - 1][n % len(below[level - 1])]
                directory.add_values(dn, "member", [child[1]])
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=1800, poll=0.5)
        sync.start_sync_cycle(policy="Delta")
        sync.wait_until_idle(timeout=1800, poll=0.5)
    return made


def start_workers(count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "JOB_EXTRA_MODULES": "bench.batch", "BENCH_BATCH_COUNT": "1",
           "DL_BATCH_TAKE_OVER_SECONDS": "30"}
    log = open(ROOT / "var" / "bench" / "batch-workers.log", "ab")  # noqa: SIM115 - the workers' whole life
    return [subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "rqworker", "default", "long", "--name",
                              f"bench-batch-{os.getpid()}-{n}"], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True) for n in range(count)]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """Warm shutdown; a worker still busy after a minute (a job finishing after the batch ended) is killed, so
    the figures are printed all the same."""
    for proc in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print(f"Worker {proc.pid} still busy a minute after the warm shutdown: killed.", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def main() -> None:
    import logging

    import django

    logging.disable(logging.INFO)
    django.setup()
    from django.core.management import call_command

    sys.path.insert(0, str(ROOT / "bench"))
    ours = dict(os.environ)
    from dl_migration import bench_lab  # the same lab set-up; its module sets its own lab's variables:

    os.environ.clear()
    os.environ.update(ours)  # this bench's lab stays the one its workers see

    call_command("migrate", verbosity=0)
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    print(f"Preparing the bench lab and {LISTS} lists, depth {DEPTH} (seeded once, reused)…", flush=True)
    with bench_lab() as manifest:
        measure(manifest)


def measure(manifest) -> None:
    import django_rq
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from migrations_app import batch_run
    from migrations_app import batch_services as bsvc
    from migrations_app.models import DistributionList, MigrationBatch
    from portal.accounts.services import do_sync_roles
    from portal.connectors.registry import active_directory, entra_connect
    from portal.jobs.services import run_job_inline

    made = build_lists(manifest)
    do_sync_roles()
    users = {}
    for name, role in (("bench-tech", "Helpdesk"), ("bench-approver", "Approver")):
        users[role], _ = get_user_model().objects.get_or_create(username=name)
        users[role].groups.set(Group.objects.filter(name=role))
    parents: dict[str, list[str]] = {}
    with active_directory() as directory:
        dns = {dn.lower(): mail for mail, dn, _, _ in made}
        for mail, dn, _, _ in made:
            kids = [v for v in directory.iter_values(dn, "member") if v.lower() in dns]
            guid = directory.read(dn, attributes=["cn"]).guid
            DistributionList.objects.update_or_create(guid=guid, defaults=dict(
                dn=dn, name=mail.split("@")[0], mail=mail, ou=dn.split(",", 1)[1], child_lists=kids,
                inventoried_at=timezone.now()))
            for kid in kids:
                parents.setdefault(dns[kid.lower()], []).append(dn)
    for mail, parent_dns in parents.items():
        DistributionList.objects.filter(mail=mail).update(parent_lists=parent_dns)
    tech, approver = users["Helpdesk"], users["Approver"]
    batch = bsvc.do_create_batch(name=f"bench {LISTS} lists", options={"keep_original": True}, user=tech)
    bsvc.do_add_to_batch(batch=batch, values=[(0, m) for m, *_ in made], user=tech)
    pre = run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    batch.refresh_from_db()
    print(f"Preflight: {pre.summary}", flush=True)
    bsvc.do_submit_batch(batch=batch, user=tech)
    bsvc.do_approve_batch(batch=batch, user=approver, signed_hash=batch.plan_hash)

    conn = django_rq.get_connection("default")
    conn.set(COUNTER, 0)
    conn.delete(BY_CMDLET)
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=600, poll=0.5)
        before = max((r.run_history_id for r in sync.run_history(count=1)), default=0)
    workers = start_workers(WORKERS)
    try:
        start = time.perf_counter()
        batch = batch_run.do_schedule_batch(batch=batch, user=tech)
        while MigrationBatch.objects.get(pk=batch.pk).status == "running":
            if time.perf_counter() - start > 6 * 3600:
                raise SystemExit("the batch did not end within 6 hours")
            time.sleep(2)
        wall = time.perf_counter() - start
    finally:
        stop_workers(workers)
    batch.refresh_from_db()
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=600, poll=0.5)
        syncs = len([r for r in sync.run_history(count=1000) if r.run_history_id > before])
    calls = int(conn.get(COUNTER) or 0)
    by_cmdlet = {k.decode(): int(v) for k, v in sorted(conn.hgetall(BY_CMDLET).items(), key=lambda kv: -int(kv[1]))}
    members = sum(size for *_, size in made)
    states: dict[str, int] = {}
    for state in batch.lists.values_list("run_state", flat=True):
        states[state] = states.get(state, 0) + 1
    result = {"lists": LISTS, "depth": DEPTH, "workers": WORKERS, "members": members, "batch": batch.status,
              "run_states": states, "wall_s": round(wall, 1), "lists_per_minute": round(60 * LISTS / wall, 2),
              "delta_syncs": syncs, "exchange_calls": calls, "exchange_calls_per_member": round(calls / members, 4),
              "exchange_calls_per_list": round(calls / LISTS, 1), "exchange_calls_by_cmdlet": by_cmdlet}
    print(json.dumps(result, indent=2))
    print(f"Delta syncs: {syncs} for {LISTS} lists of depth {DEPTH}; goal at most {DEPTH + 1}, baseline {LISTS} "
          f"(one per list): {LISTS / max(syncs, 1):.0f}x fewer, {syncs / (DEPTH + 1):.2f} of the goal.")
    print(f"Exchange calls: {calls} for {members} members = {calls / members:.4f} per member; goal 0.01, "
          f"baseline 1 per member: {members / max(calls, 1):.0f}x fewer, {calls / members / 0.01:.2f} of the goal.")


if __name__ == "__main__":
    main()
