"""Benchmark: the Address repair scan (diagnostics_app/addresses: every rule, ProxyCalc, duplicates across the
whole scope) against the read it rides on.

Two sources (env BENCH_ADDRESS_SOURCE):

* ``lab`` (the default): the lab Samba AD DC that bench/ad_scan.py seeds (its own lab on 127.0.0.7 under
  var/bench/lab, BENCH_AD_USERS users, default 100,000; `make bench` runs ad_scan first, this reuses its seed,
  same parameters, never another), plus BENCH_AD_GROUPS mail-enabled groups beside it (default 20,000, issue
  #13's share: portal/lab/seed/bulk.py, added once and reused; ad_scan reads users only and never sees them).
  Baseline named: the paged read alone through the same connector and attributes (collect.read_scope, entries
  built); measured: the read plus every rule (Scanner.feed and finish). No tenant: the tenant duplicate pass
  runs over an empty tenant (the generated source has one).
* ``generated``: users, groups (BENCH_ADDRESS_USERS / BENCH_ADDRESS_GROUPS, default 100,000 / 20,000) and a
  tenant of cloud-only objects (BENCH_ADDRESS_TENANT, default 10,000) generated in memory, with bad values and
  duplicates sprinkled in, through the pure rules: no directory at all. Baseline named: building the entries
  alone (the rate the rules are held to is then far stricter than an LDAP read).

Prints objects/s of both and their ratio (goal >= 0.8), the scan's peak memory (goal < 300 MB), and the scan's time
at 10%, 50% and 100% of the objects (goal: time(100%)/time(10%) <= 12, linear duplicate detection). Also the scan's
CPU per object split into its rules and the rest, and the CPU both processes spend collecting garbage (by
generation): what the scan costs beyond the read. Measured on 3 December 2026 at full size: the lab's
127,130 objects (100,008 users, 22,121 groups, 5,001 contacts; seeded once in 44 minutes), 35,968 findings. Before
the rules were made cheaper (load 0.4-1.1), two runs: ratio 0.76 and 0.86 (CPU 0.66, 0.76), rules 153 and 135 us per
object against a read of ~400 us (0.38, 0.34 of it), peak 234/231 MB, time(all)/time(10%) 5.9/5.1 wall. After
(IdFix's RFC2822 written for Python's engine, the address view built without NamedTuple's __new__, the UPN class
without re.IGNORECASE; same findings), run 1 at load 1-5 (others' jobs during the baseline): wall ratio 1.32
(meaningless: the baseline read was slowed), CPU ratio 0.76, rules 130 of the read's 416 us (0.31), peak 231 MB,
5.6 wall / 10.9 CPU; run 2 at load 1.0: read 1,696 objects/s, scan 1,383: ratio 0.82, CPU 0.74; rules 102 of the
read's 314 us (0.32), peak 231 MB (read 115), 5.7 wall / 8.6 CPU; run 3 at load 1.0, after merging: read 1,335
objects/s, scan 1,111: ratio 0.83, CPU 0.67; rules 128 of the read's 360 us, peak 231 MB, 6.6 wall / 11.6 CPU. So
the rules cost ~10-15% less against the read,
not the ~30% a CPU ratio of 0.8 needs (rules <= a quarter of the read's CPU); the wall ratio stays at the goal by a
thin margin. The rules alone on the lab's first 40,000 objects (read once, no directory), before and after in
alternating fresh processes: ~150 -> ~130 us/object at load 3-4 (medians), 107 -> 102 at load 1 (median of the best of
3 in 7 pairs, which spread over 90-140): a gain this machine's noise half hides. What is left is spread thin
(IdFix's per-value calls and lru caches, the duplicate index's slots, skip_reason), and the read waits for Samba about
as long as it computes: reading the next page while the rules run (a producer thread, one page ahead) would hide the
rules in that wait (not tried). CPU time moves +-15% between runs here: compare ratios of one run, not one run's
figure with another's. Neither process writes to a database, logs or reports progress per object; both build the
entries with the same collect.read_scope. Each measurement runs in a fresh process. Run with `make bench`, or
`python bench/address_scan.py`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from portal.lab.address_objects import DOMAIN, INITIAL  # noqa: E402 - once the checkout is on the path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DIROPS_VAR_DIR", str(ROOT / "var" / "bench"))
SOURCE = os.environ.get("BENCH_ADDRESS_SOURCE", "lab")
if SOURCE == "lab":
    # bench/ad_scan.py's lab, exactly: a different seed would make one of the two benchmarks reseed 100,000 users.
    os.environ["LAB_DIR"] = str(ROOT / "var" / "bench" / "lab")
    os.environ.setdefault("LAB_MODE", "1")
    os.environ["LAB_AD_HOST"] = os.environ.get("BENCH_AD_HOST", "127.0.0.7")

AD_USERS = int(os.environ.get("BENCH_AD_USERS", "100000"))
AD_GROUPS = int(os.environ.get("BENCH_AD_GROUPS", str(AD_USERS // 5)))
USERS = int(os.environ.get("BENCH_ADDRESS_USERS", "100000"))
GROUPS = int(os.environ.get("BENCH_ADDRESS_GROUPS", "20000"))
TENANT = int(os.environ.get("BENCH_ADDRESS_TENANT", "10000"))
PAGE = 1000
GOAL_RATIO = 0.8
GOAL_MB = 300
GOAL_SCALING = 12


def _peak_mb() -> float:
    with open("/proc/self/status") as status:  # VmHWM: this process's own peak (see bench/ad_scan.py)
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generated(limit: int | None):
    from portal.lab.address_objects import generated_entries

    return generated_entries(users=USERS, groups=GROUPS, limit=limit)


def _tenant():
    from portal.lab.address_objects import generated_tenant

    return generated_tenant(count=TENANT)


def _lab_entries(limit: int | None):
    from diagnostics_app.addresses.collect import AD_ATTRIBUTES, read_scope
    from portal.connectors.registry import active_directory, ad_settings

    with active_directory() as directory:
        for number, item in enumerate(read_scope(directory, bases=[ad_settings().base_dn], attributes=AD_ATTRIBUTES,
                                                 page_size=PAGE), start=1):
            yield item
            if limit and number >= limit:
                return


def measure(mode: str, limit: int | None) -> dict:
    """One run in this (fresh) process: ``read`` (the baseline) or ``scan`` (read + every rule)."""
    import django

    django.setup()
    from diagnostics_app.addresses.rules import ScanConfig, Scanner
    from portal.heap import frozen_heap

    source = _generated if SOURCE == "generated" else _lab_entries
    tenant = list(_tenant()) if SOURCE == "generated" else []
    # Both processes leave what they hold before the read (Django, the modules, the tenant) out of the collector's
    # walks, as the scan job does (portal/heap.frozen_heap): a raw read, without Django loaded, has no such heap.
    with frozen_heap():
        collecting = _GcClock()
        started, cpu = time.perf_counter(), time.process_time()
        objects = findings = 0
        rules = 0.0
        if mode == "read":
            for _ in source(limit):
                objects += 1
        else:
            scanner = Scanner(ScanConfig(verified_domains=(DOMAIN,), initial_domain=INITIAL), tenant)
            clock = time.process_time
            for item in source(limit):
                before = clock()
                findings += len(scanner.feed(item))
                rules += clock() - before
            before = clock()
            findings += sum(1 for _ in scanner.finish())
            rules += clock() - before
            objects = scanner.seen
        collecting.stop()
    return {"mode": mode, "objects": objects, "findings": findings, "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu, "peak_mb": _peak_mb(), "gc_cpu_seconds": collecting.seconds,
            "gc_cpu_by_generation": collecting.by_generation,
            "rules_cpu_seconds": rules}


class _GcClock:
    """CPU time spent collecting garbage in this process (gc.callbacks). The scan's CPU beyond the read's is its
    rules plus the collections its own allocations cause; this names the second part (inside the rules' time
    too when a collection starts there)."""

    def __init__(self) -> None:
        import gc

        self.seconds, self._at, self._gc = 0.0, 0.0, gc
        self.by_generation = [0.0, 0.0, 0.0]  # a full (oldest-generation) collection walks every tracked object
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._at = time.process_time()
        else:
            spent = time.process_time() - self._at
            self.seconds += spent
            self.by_generation[info["generation"]] += spent

    def stop(self) -> None:
        self._gc.callbacks.remove(self._tick)


def _in_subprocess(mode: str, limit: int | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", mode, str(limit or 0)], capture_output=True,
                         text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


def _runs(total: int) -> dict:
    best = {}
    for mode in ("read", "scan"):  # alternate twice, keep the best of each: the machine's noise hits both alike
        best[mode] = min((_in_subprocess(mode) for _ in range(2)), key=lambda r: r["seconds"])
    best["steps"] = [_in_subprocess("scan", max(1, total * share // 100)) for share in (10, 50)] + [best["scan"]]
    return best


def main() -> None:
    if SOURCE == "lab":
        import django

        django.setup()
        from portal.lab import config

        with config.servers_left_as_found():
            from django.conf import settings

            from portal.lab import samba

            samba.ensure_up(base_dir=config.ad_dir(), admin_password=config.ad_admin_password(create=True),
                            realm=settings.LAB_AD_REALM, host=settings.LAB_AD_HOST)
            started = time.perf_counter()
            config.ensure_seeded(users=AD_USERS, seed=1)
            seeded = time.perf_counter()
            from portal.connectors.registry import active_directory
            from portal.lab.seed.bulk import ensure_bulk_groups

            with active_directory() as directory:
                added = ensure_bulk_groups(directory, base_dn=config.base_dn(), groups=AD_GROUPS, seed=1)
            if seeded - started > 5 or added:
                print(f"  (seeding: {AD_USERS:,} users {seeded - started:.0f}s, {added:,} bulk groups added in "
                      f"{time.perf_counter() - seeded:.0f}s; later runs reuse them)")
            best = _runs(AD_USERS + AD_GROUPS)
        what = (f"bench/ad_scan's seeded lab AD ({AD_USERS:,} users and the seed's other objects, {AD_GROUPS:,} bulk "
                "groups, no tenant)")
        baseline = "the connector's paged read alone (collect.read_scope, same attributes)"
    elif SOURCE == "generated":
        best = _runs(USERS + GROUPS)
        what = (f"generated objects through the pure rules, no directory ({USERS:,} users, {GROUPS:,} groups, "
                f"{TENANT:,} cloud-only tenant objects)")
        baseline = "building the entries alone (no LDAP read: a far stricter baseline than the issue's)"
    else:
        raise SystemExit("BENCH_ADDRESS_SOURCE is lab or generated")
    read, scan = best["read"], best["scan"]
    if read["objects"] != scan["objects"]:
        raise SystemExit(f"object counts differ: read {read['objects']}, scan {scan['objects']}")
    ratio = (scan["objects"] / scan["seconds"]) / (read["objects"] / read["seconds"])
    # CPU seconds of the measuring process: on a shared machine the wall clock mostly measures the neighbours
    # (a 24,000-object scan measured 68 s wall for 9 s of CPU at load average 18 on 2 cores). In lab mode the
    # CPU time leaves out what Samba spends answering, so the wall-clock ratio stays the one the goal names.
    cpu_ratio = (scan["objects"] / scan["cpu_seconds"]) / (read["objects"] / read["cpu_seconds"])
    steps = best["steps"]
    scaling = steps[-1]["seconds"] / steps[0]["seconds"]
    cpu_scaling = steps[-1]["cpu_seconds"] / steps[0]["cpu_seconds"]
    print(f"Address scan over {what}; {scan['findings']:,} findings (best of 2 each)")
    print(f"  baseline, {baseline}: {read['objects'] / read['seconds']:,.0f} objects/s, peak {read['peak_mb']:.0f} MB")
    print(f"  address scan (every rule, ProxyCalc, duplicates): {scan['objects'] / scan['seconds']:,.0f} objects/s, "
          f"peak {scan['peak_mb']:.0f} MB")
    print(f"  ratio scan/baseline: {ratio:.2f} (goal >= {GOAL_RATIO}); peak memory {scan['peak_mb']:.0f} MB "
          f"(goal < {GOAL_MB} MB; ratio {scan['peak_mb'] / GOAL_MB:.2f})")
    print(f"  CPU time (this process only): baseline {read['objects'] / read['cpu_seconds']:,.0f} objects/s, scan "
          f"{scan['objects'] / scan['cpu_seconds']:,.0f} objects/s, ratio {cpu_ratio:.2f}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    per = 1e6 / scan["objects"]
    print(f"  CPU per object: read {read['cpu_seconds'] * per:.0f} us (of it collecting garbage "
          f"{read['gc_cpu_seconds'] * per:.0f} us); scan {scan['cpu_seconds'] * per:.0f} us = the rules (feed, "
          f"finish) {scan['rules_cpu_seconds'] * per:.0f} us + the read and collections outside them "
          f"{(scan['cpu_seconds'] - scan['rules_cpu_seconds']) * per:.0f} us (collecting garbage, anywhere: "
          f"{scan['gc_cpu_seconds'] * per:.0f} us)")
    print("  collecting garbage by generation (young, middle, full): read "
          + "/".join(f"{s * per:.0f}" for s in read["gc_cpu_by_generation"]) + " us, scan "
          + "/".join(f"{s * per:.0f}" for s in scan["gc_cpu_by_generation"]) + " us per object")
    print("  time by size: " + ", ".join(f"{s['objects']:,} objects {s['seconds']:.1f}s ({s['cpu_seconds']:.1f}s CPU)"
                                         for s in steps)
          + f"; time(all)/time(10%) = {scaling:.1f}, CPU {cpu_scaling:.1f} (goal <= {GOAL_SCALING}, linear)")
    met = ratio >= GOAL_RATIO and scan["peak_mb"] < GOAL_MB and scaling <= GOAL_SCALING
    print("  goals met" if met else "  GOALS NOT MET")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]) or None)))
    else:
        main()
