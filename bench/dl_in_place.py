"""Benchmark: the in-place method (source of authority handed to the cloud) against the recreate method, in
the lab, on the same lists.

Runs the real migration jobs (migrations_app.engine / migrations_app.inplace through the real connectors)
against the bench's own lab (the one bench/dl_migration.py uses: Samba on 127.0.0.10, lab cloud on
127.0.0.1:8467 under var/bench/dl/lab; seeded once, reused) with sync latency 0:

  1. one 5,200-member list (a fresh copy of the seed's "All Company Announcements" for each method):
     migrated once by recreate, once in place;
  2. a batch of BENCH_BATCH_LISTS lists (default 50, 4 members each, fresh per method), signed and run by
     the batch's run job inline, once with every list recreated, once with every list in place.
     (BENCH_CASES=big or =batch runs one of the two.)

For each: wall time, Exchange Online cmdlet calls, Graph HTTP requests, sync cmdlet calls and LDAP
operations. Baseline it names: the recreate method (the field notes' way, bench/dl_migration.py). Prints the
figures and the ratios recreate / in place.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.dl_migration import _timed, bench_lab, fresh_big_list  # noqa: E402  (sets the bench lab's env)

os.environ.setdefault("DL_DELETION_TIMEOUT_SECONDS", "600")
BATCH_LISTS = int(os.environ.get("BENCH_BATCH_LISTS", "50"))
CASES = os.environ.get("BENCH_CASES", "big,batch").split(",")  # a shorter run: BENCH_CASES=batch


class Meter:
    """Calls to each directory, counted at the connectors (every HTTP request to Graph, retries included)."""

    def __init__(self) -> None:
        from portal.connectors import ad as adc
        from portal.connectors import exchange as exo
        from portal.connectors import sync as syncc
        from portal.connectors.graph import transport

        self.counter: Counter = Counter()
        self.clock = {"lab": 0.0}
        exo.ExchangeOnline._post = _timed(self.counter, self.clock, "exchange", exo.ExchangeOnline._post)
        syncc.EntraConnect._run = _timed(self.counter, self.clock, "sync", syncc.EntraConnect._run)
        adc.ActiveDirectory._call = _timed(self.counter, self.clock, "ldap", adc.ActiveDirectory._call)
        inner = transport._CountingTransport.handle_async_request
        counter = self.counter

        async def counted(self, request):  # noqa: ANN001 - httpx's signature
            counter["graph"] += 1
            return await inner(self, request)

        transport._CountingTransport.handle_async_request = counted

    def run(self, fn) -> dict:
        before, lab_before = Counter(self.counter), self.clock["lab"]
        start = time.perf_counter()
        outcome = fn()
        wall = time.perf_counter() - start
        calls = self.counter - before
        return {"wall_s": round(wall, 2), "lab_s": round(self.clock["lab"] - lab_before, 2),
                "exchange": calls["exchange"], "graph": calls["graph"], "sync": calls["sync"], "ldap": calls["ldap"],
                "outcome": outcome}


def small_lists(manifest, count: int) -> list[str]:
    """``count`` fresh synced 4-member lists, synced in one cycle."""
    from portal.connectors.registry import active_directory, entra_connect
    from tests.integration.dl_lab import remote_mailboxes

    members = remote_mailboxes(4)
    mails = []
    with active_directory() as directory:
        for _ in range(count):
            alias = f"benchip-{uuid.uuid4().hex[:8]}"
            dn = directory.create_group(
                parent=manifest.ous["groups"], name=f"Bench {alias}", sam_account_name=alias,
                mail=f"{alias}@contoso.com", alias=alias, attributes={"proxyAddresses": [f"SMTP:{alias}@contoso.com",
                                                            f"smtp:{alias}@contoso.mail.onmicrosoft.com"],
                                         "msExchRecipientTypeDetails": 256, "msExchRecipientDisplayType": 1})
            directory.add_values(dn, "member", members)
            mails.append(f"{alias}@contoso.com")
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=600, poll=0.2)
        sync.start_sync_cycle(policy="Delta")
        sync.wait_until_idle(timeout=600, poll=0.2)
    return mails


def one_list(user, mail: str, method: str) -> str:
    from migrations_app import services as svc
    from portal.jobs.services import run_job_inline

    pre = run_job_inline(svc.do_start_preflight(mail=mail, options={"method": method}, user=user, enqueue=False))
    assert pre.result.get("ok"), pre.summary
    migration = svc.do_request_migration(mail=mail, options={"method": method}, user=user, enqueue=False)
    job = run_job_inline(migration.job)
    migration.refresh_from_db()
    return f"{migration.get_status_display()} ({job.status})"


def a_batch(user, approver, mails: list[str], method: str) -> str:
    from django.utils import timezone

    from migrations_app import batch_run
    from migrations_app import batch_services as bsvc
    from migrations_app.models import DistributionList
    from portal.connectors.ad import recipients
    from portal.connectors.registry import active_directory
    from portal.jobs.services import run_job_inline

    with active_directory() as directory:
        for mail in mails:
            group = recipients.find_by_address(directory, mail)[0]
            DistributionList.objects.get_or_create(guid=group.guid, defaults={
                "dn": group.dn, "name": mail.split("@")[0], "mail": mail, "ou": group.dn.split(",", 1)[1],
                "inventoried_at": timezone.now()})
    batch = bsvc.do_create_batch(name=f"bench {method} {uuid.uuid4().hex[:6]}", options={"keep_original": True},
                                 method=method, user=user)
    bsvc.do_add_to_batch(batch=batch, values=[(0, m) for m in mails], user=user)
    job = run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=user, enqueue=False))
    batch.refresh_from_db()
    assert batch.plan_hash, job.summary
    bsvc.do_submit_batch(batch=batch, user=user)
    bsvc.do_approve_batch(batch=batch, user=approver, signed_hash=batch.plan_hash)
    batch = batch_run.do_schedule_batch(batch=batch, user=user, enqueue=False, inline=True)
    run_job_inline(batch.job)
    batch.refresh_from_db()
    return batch.get_status_display()


def main() -> None:
    import logging

    import django

    logging.disable(logging.INFO)
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from portal.accounts.services import do_sync_roles

    call_command("migrate", verbosity=0)
    do_sync_roles()
    users = get_user_model().objects
    tech, _ = users.get_or_create(username="bench-tech")
    tech.groups.set(Group.objects.filter(name="Helpdesk"))
    approver, _ = users.get_or_create(username="bench-approver")
    approver.groups.set(Group.objects.filter(name="Approver"))
    print("Preparing the bench lab (seeded once, reused)…", flush=True)
    with bench_lab() as manifest:
        meter = Meter()
        results = {}
        for method in ("recreate", "in_place") if "big" in CASES else ():
            mail = fresh_big_list(manifest)
            results[f"big_{method}"] = meter.run(lambda mail=mail, method=method: one_list(tech, mail, method))
            print(f"5,200-member list, {method}: {results[f'big_{method}']}", flush=True)
        for method in ("recreate", "in_place") if "batch" in CASES else ():
            mails = small_lists(manifest, BATCH_LISTS)
            results[f"batch_{method}"] = meter.run(lambda mails=mails, method=method: a_batch(tech, approver, mails,
                                                                                               method))
            print(f"{BATCH_LISTS}-list batch, {method}: {results[f'batch_{method}']}", flush=True)
    print(json.dumps(results, indent=2))
    for case, label in (("big", "5,200-member list"), ("batch", f"{BATCH_LISTS}-list batch")):
        if case not in CASES:
            continue
        base, ours = results[f"{case}_recreate"], results[f"{case}_in_place"]
        print(f"{label}: in place {ours['wall_s']:.1f} s against recreate {base['wall_s']:.1f} s (baseline), ratio "
              f"{base['wall_s'] / max(ours['wall_s'], 0.001):.2f}x; Exchange calls {ours['exchange']} against "
              f"{base['exchange']} (ratio {base['exchange'] / max(ours['exchange'], 1):.2f}x); Graph requests "
              f"{ours['graph']} against {base['graph']}; sync cmdlets {ours['sync']} against {base['sync']}; "
              f"LDAP operations {ours['ldap']} against {base['ldap']}.")


if __name__ == "__main__":
    main()
