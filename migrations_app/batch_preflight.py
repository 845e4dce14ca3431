"""The preflight of a whole batch: every list judged by the single-list preflight, with what is the
same for every list (accepted domains, outbound connectors, the non-sync OU and its sync scope, the
cloud recipient of a member two lists share) read once for the batch.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from portal.jobs.runner import JobRunner

from . import engine, read_once
from .batch_order import Order, order_lists
from .batch_services import ListVerdict
from .choices import BatchListOutcome, BatchMethod, CheckOutcome, MigrationMethod
from .models import MigrationBatch
from .options import MigrationOptions

# The checks that fail while child lists are still on-premises, one per method (recreate, in place): in a
# batch that runs those children first they are a wait, not a block.
CHILDREN_FIRST_CHECKS = ("nested_groups", "in_place_children")

# Reads that answer the same for every list of one batch while nothing is being changed.
_SHARED_READS = {
    "exchange": ("get_accepted_domains", "get_outbound_connectors", "get_recipient"),
    "directory": ("exists",),
    "sync": ("in_scope", "server_version"),
}


def shared(c: engine.Connectors, counter: Counter) -> engine.Connectors:
    return read_once.shared(c, _SHARED_READS, counter=counter)


def outcome_of(report: dict[str, Any], *, batch_dns: set[str]) -> tuple[str, list[str]]:
    """Ready, warnings or blocked. A parent whose only failure is child lists still on-premises that
    are all in this batch is not blocked: the batch migrates those children first."""
    failures = [c for c in report.get("checks", []) if c.get("outcome") == CheckOutcome.FAILURE]
    waits = [c for c in failures if c.get("key") in CHILDREN_FIRST_CHECKS
             and c.get("objects_total", 0) <= len(c.get("objects", []))
             and all(dn.lower() in batch_dns for dn in c.get("objects", []))]
    if len(failures) > len(waits):
        return BatchListOutcome.BLOCKED, [c["title"] for c in failures if c not in waits]
    if waits or report.get("warnings"):
        return BatchListOutcome.WARNINGS, []
    return BatchListOutcome.READY, []


def children_in_batch(lists) -> dict[str, set[str]]:
    """Each list of the batch (by address) → the lists of the batch it contains, from the inventory."""
    by_dn = {item.distribution_list.dn.lower(): item.mail.lower() for item in lists if item.distribution_list}
    return {item.mail.lower(): {by_dn[dn.lower()] for dn in (item.distribution_list.child_lists or [])
                                if dn.lower() in by_dn} if item.distribution_list else set() for item in lists}


def list_options(item, *, options: MigrationOptions, batch_method: str) -> tuple[MigrationOptions, bool]:
    """The options one list of the batch is judged with, and whether its method is the recommended one: its
    own method if a person chose one, else the batch's rule (one method for every list, or the recommended)."""
    if item.method:
        return dataclasses.replace(options, method=item.method), False
    if batch_method == BatchMethod.RECOMMENDED:
        return options, True
    return dataclasses.replace(options, method=batch_method), False


def mixed_method_edges(lists, methods: dict[str, str]) -> dict[str, list[str]]:
    """Parents of the batch whose child list in the batch goes by the other method (address → sentences).
    A list recreated leaves no synced child for an in-place parent to keep, and a child converted in place
    stays a mail-enabled group on-premises that a recreated parent cannot take: both wait for ever."""
    out: dict[str, list[str]] = {}
    for parent, children in children_in_batch(lists).items():
        for child in sorted(children):
            if parent in methods and child in methods and methods[parent] != methods[child]:
                out.setdefault(parent, []).append(
                    f"Child list {child} goes {MigrationMethod(methods[child]).label.lower()}, this list "
                    f"{MigrationMethod(methods[parent]).label.lower()}: nested lists of one batch go by one method")
    return out


def nesting_order(lists) -> Order:
    """The batch's run order from the inventory's nesting (child_lists): keys are the lists' addresses."""
    return order_lists(children_in_batch(lists))


def preflight_batch(*, batch: MigrationBatch, c: engine.Connectors, runner: JobRunner
                    ) -> tuple[list[ListVerdict], dict[str, Any]]:
    options = MigrationOptions.from_dict(batch.options)
    lists = list(batch.lists.select_related("distribution_list").order_by("mail"))
    batch_dns = {item.distribution_list.dn.lower() for item in lists if item.distribution_list}
    reads: Counter = Counter()
    c = shared(c, reads)
    order = nesting_order(lists)
    waves = order.wave_of()
    on_cycle = {key for cycle in order.cycles for key in cycle}
    for cycle in order.cycles:
        runner.warning(f"Nesting cycle: {' > '.join(cycle)} > {cycle[0]}: these lists cannot be ordered; remove one "
                     "of them from the batch or break the cycle in Active Directory.")
    verdicts: list[ListVerdict] = []
    blocked_by: Counter = Counter()
    members = dependencies = 0
    judged: list[tuple[Any, dict[str, Any]]] = []
    for index, item in enumerate(lists):
        runner.progress(index, len(lists))
        item_options, recommended = list_options(item, options=options, batch_method=batch.method)
        _, report = engine.run_preflight(mail=item.mail, options=item_options, c=c, recommended=recommended)
        data = report.as_dict()
        data["method_source"] = "recommended" if recommended else "chosen" if item.method else "batch"
        judged.append((item, data))
    mixed = mixed_method_edges(lists, {item.mail.lower(): data["method"] for item, data in judged
                                       if data.get("method")})
    for item, data in judged:
        report_members = int(data.get("member_count") or 0)
        outcome, reasons = outcome_of(data, batch_dns=batch_dns)
        key = item.mail.lower()
        if key in mixed:
            outcome = BatchListOutcome.BLOCKED
            reasons.extend(mixed[key])
        if key in on_cycle or key in order.behind_cycle:
            outcome = BatchListOutcome.BLOCKED
            reasons.append("Nesting cycle in the batch" if key in on_cycle else "Contains a list on a nesting cycle")
        data["wave"] = waves.get(key)
        blocked_by.update(reasons)
        members += report_members
        dependencies += sum(len(v) for v in ((data.get("plan") or {}).get("dependencies") or {}).values())
        verdicts.append(ListVerdict(mail=item.mail, report=data, outcome=outcome))
        method = MigrationMethod(data["method"]).label.lower() if data.get("method") else "?"
        line = (f"{item.mail} ({method}, {data['method_source']}): {BatchListOutcome(outcome).label.lower()}"
                + (f" ({'; '.join(reasons)})" if reasons else ""))
        # A blocked list is a finding of the preflight (it did its work), shown as a warning, not a job error.
        (runner.warning if outcome in (BatchListOutcome.BLOCKED, BatchListOutcome.WARNINGS) else runner.success)(line)
    runner.progress(len(lists), len(lists))
    counts = Counter(v.outcome for v in verdicts)
    summary = {"lists": len(lists), "ready": counts[BatchListOutcome.READY],
               "warnings": counts[BatchListOutcome.WARNINGS], "blocked": counts[BatchListOutcome.BLOCKED],
               "blocked_by": dict(blocked_by.most_common()), "members": members, "dependencies": dependencies,
               "shared_reads": sum(reads.values()), "waves": len(order.waves), "cycles": order.cycles,
               "methods": dict(Counter(v.report.get("method") or "" for v in verdicts))}
    return verdicts, summary
