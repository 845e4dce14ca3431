"""Benchmark: one 5,000-member distribution list migrated to Exchange Online in the lab.

Runs the real migration job (migrations_app.engine through the real connectors) against its own lab
(Samba on 127.0.0.10, lab cloud on 127.0.0.1:8467, under var/bench/dl/lab; seeded once, reused, its
servers stopped at the end unless they were running before) with sync latency 0, on the seed's
"All Company Announcements" list (5,200 members: 157 users, 5,043 contacts), re-created fresh for each
run. Measures:

  - wall time, split into lab time (spent waiting on the lab's servers: every LDAP operation,
    Exchange cmdlet and sync cmdlet, timed at the connector) and portal time (the rest);
  - Exchange cmdlet calls, sync cmdlet calls and LDAP operations.

Baseline it names: the same migration done one call per member, as per-member scripts do
(Get-Recipient for each member to resolve it, Add-DistributionGroupMember for each member), plus the
same fixed calls. Its call count is exact arithmetic; its time is the measured mean of those two
cmdlets on a sample of 200 members, extrapolated. Prints the figures and the ratios.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DIROPS_VAR_DIR", str(ROOT / "var" / "bench" / "dl"))
# Its own lab whatever the var dir (make bench sets var/bench): ad_scan's 100,000-user lab is var/bench/lab.
os.environ["LAB_DIR"] = str(ROOT / "var" / "bench" / "dl" / "lab")
os.environ["LAB_MODE"] = "1"
os.environ.setdefault("LAB_AD_HOST", "127.0.0.10")
os.environ.setdefault("LAB_CLOUD_PORT", "8467")
os.environ["LAB_SYNC_LATENCY_SECONDS"] = "0"
os.environ.setdefault("DL_DELETION_POLL_SECONDS", "0.2")
os.environ.setdefault("DL_MOVE_RETRY_SECONDS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
SAMPLE = 200
BIG = "all-company-announcements@contoso.com"


def _timed(counter: Counter, clock: dict, key: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock["lab"] += time.perf_counter() - start
            counter[key] += 1
    return wrapper


@contextmanager
def bench_lab():
    """The bench's lab, up and seeded; its servers stop on the way out unless they were running before."""
    from portal.lab import config

    with config.servers_left_as_found():
        yield setup_lab()


def setup_lab():
    from django.conf import settings

    from portal.lab import config, samba
    from portal.lab.cloud import server

    samba.ensure_up(base_dir=config.ad_dir(), admin_password=config.ad_admin_password(create=True),
                    realm=settings.LAB_AD_REALM, host=settings.LAB_AD_HOST)
    manifest = config.ensure_seeded(users=settings.LAB_SEED_USERS, seed=1)
    config.write_sync_options()
    server.ensure_up(data_dir=config.cloud_dir(), port=settings.LAB_CLOUD_PORT, **config.cloud_hooks())
    config.ensure_cloud_seeded(manifest=manifest, seed=1)
    return manifest


def fresh_big_list(manifest) -> str:
    """A 5,200-member synced list: the seed's big list, copied under a new address for this run."""
    import uuid

    from portal.connectors.ad import recipients
    from portal.connectors.registry import active_directory, entra_connect

    alias = f"bench-{uuid.uuid4().hex[:8]}"
    with active_directory() as directory:
        members = list(directory.iter_values(recipients.find_by_address(directory, BIG)[0].dn, "member"))
        dn = directory.create_group(parent=manifest.ous["groups"], name=f"Bench {alias}", sam_account_name=alias,
                                    mail=f"{alias}@contoso.com", alias=alias,
                                    attributes={"proxyAddresses": [f"SMTP:{alias}@contoso.com",
                                                                   f"smtp:{alias}@contoso.mail.onmicrosoft.com"],
                                                "msExchRecipientTypeDetails": 256})
        directory.add_values(dn, "member", members, batch_size=1000)
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=600, poll=0.2)
        sync.start_sync_cycle(policy="Delta")
        sync.wait_until_idle(timeout=600, poll=0.2)
    return f"{alias}@contoso.com"


def main() -> None:
    import logging

    import django

    logging.disable(logging.INFO)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print("Preparing the bench lab (seeded once, reused)…", flush=True)
    with bench_lab() as manifest:
        measure(manifest)


def measure(manifest) -> None:
    from django.contrib.auth import get_user_model

    from migrations_app import services as svc
    from portal.accounts.services import do_sync_roles
    from portal.connectors import ad as adc
    from portal.connectors import exchange as exo
    from portal.connectors import sync as syncc
    from portal.connectors.registry import exchange_online
    from portal.jobs.services import run_job_inline

    mail = fresh_big_list(manifest)
    do_sync_roles()
    user, _ = get_user_model().objects.get_or_create(username="bench-tech")
    from django.contrib.auth.models import Group
    user.groups.set(Group.objects.filter(name="Helpdesk"))

    counter: Counter = Counter()
    clock = {"lab": 0.0}
    exo.ExchangeOnline._post = _timed(counter, clock, "exchange", exo.ExchangeOnline._post)
    syncc.EntraConnect._run = _timed(counter, clock, "sync", syncc.EntraConnect._run)
    adc.ActiveDirectory._call = _timed(counter, clock, "ldap", adc.ActiveDirectory._call)

    start = time.perf_counter()
    pre = run_job_inline(svc.do_start_preflight(mail=mail, user=user, enqueue=False))
    assert pre.result.get("ok"), pre.summary
    migration = svc.do_request_migration(mail=mail, user=user, enqueue=False)
    job = run_job_inline(migration.job)
    wall = time.perf_counter() - start
    migration.refresh_from_db()
    members = migration.report.get("members", {})
    print(f"Migration of {mail}: job {job.status}, {members.get('found')} members in the cloud list "
          f"(expected {members.get('expected')}).")

    # Baseline timing: the two per-member cmdlets on a sample.
    with exchange_online() as exchange:
        sample = [m["cloud_identity"] for m in migration.backups.get(kind="onprem_members").data["members"]][:SAMPLE]
        probe = exchange.new_distribution_group(name=f"Bench probe {mail[:12]}", alias=f"probe-{mail[6:14]}",
                                                primary_smtp_address=f"probe-{mail[6:14]}@contoso.com")
        t0 = time.perf_counter()
        for identity in sample:
            exchange.get_recipient(identity)
            exchange.add_distribution_group_member(probe.guid, member=identity)
        per_member = (time.perf_counter() - t0) / len(sample)
        exchange.remove_distribution_group(probe.guid)

    n = members.get("expected") or 0
    ours = counter["exchange"] + counter["sync"]
    fixed = ours - 2  # our two member calls (twin membership read, bulk update) stand for 2*n per-member ones
    baseline_calls = fixed + 2 * n
    # The per-member way does everything else the same, then one resolve and one add per member.
    baseline_time = wall + per_member * n
    result = {
        "members": n, "wall_s": round(wall, 2), "lab_s": round(clock["lab"], 2),
        "portal_s": round(wall - clock["lab"], 2), "exchange_cmdlets": counter["exchange"],
        "sync_cmdlets": counter["sync"], "ldap_operations": counter["ldap"],
        "baseline_calls": baseline_calls, "baseline_s_estimated": round(baseline_time, 1),
        "per_member_pair_ms": round(per_member * 1000, 1),
    }
    print(json.dumps(result, indent=2))
    print(f"Wall time {wall:.1f} s = lab {clock['lab']:.1f} s + portal {wall - clock['lab']:.1f} s "
          f"(sync latency 0).")
    print(f"Exchange + sync cmdlet calls: {ours} against {baseline_calls} one call per member "
          f"(ratio {baseline_calls / max(ours, 1):.0f}x fewer).")
    print(f"Time against the per-member baseline (estimated from {SAMPLE} members, {per_member * 1000:.1f} ms "
          f"per Get-Recipient + Add-DistributionGroupMember): {baseline_time:.0f} s, ratio "
          f"{baseline_time / max(wall, 0.001):.1f}x.")


if __name__ == "__main__":
    main()
