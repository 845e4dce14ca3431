"""The Exchange Online call budget of one list's migration, counted at the connector: a fixed handful per
list plus the pages of its membership, never calls that grow with its members or with the tenant's other
lists (the batch bench's goal is at most one call per hundred members)."""

from __future__ import annotations

from collections import Counter

import pytest

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors.registry import active_directory
from portal.jobs.choices import JobStatus
from tests.integration.test_dl_migration import log_of, manifest, migrate, new_list, remote_users, sync_now, tech

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
__all__ = ["manifest", "tech"]  # fixtures

# Per job, whatever the list's size: the twin, organisation (2), dependency scan (one per cmdlet: 4), SendAs,
# temporary list (created with its members; settings when they differ), one deletion check, finalize (2), report
# (the membership; the list's own read is finalize's). The synced twin's membership is read from Graph (Entra ID's,
# which Exchange shows), not through Exchange. In a batch the dependency scan and the deletion check are made once
# per wave (bench/batch).
FIXED = 11
PER_MEMBER = 1 / 1000  # the new list's membership pages (the report's check), 1,000 members a page


@pytest.fixture
def exchange_calls(monkeypatch):
    counted: Counter = Counter()
    post = exo.ExchangeOnline._post

    def count(self, url, body, cmdlet):
        counted[cmdlet] += 1
        return post(self, url, body, cmdlet)

    monkeypatch.setattr(exo.ExchangeOnline, "_post", count)
    return counted


def test_migrating_a_list_costs_a_fixed_handful_of_calls_plus_its_membership_pages(manifest, tech, exchange_calls):
    with active_directory() as directory:
        contacts = sorted(o.dn for o in directory.search(filter=adc.object_class("contact"),
                                                         base=manifest.ous["bulk_contacts"], attributes=["cn"]))
    members = contacts[:1450] + remote_users(manifest, 50, offset=20)
    mail, dn = new_list(manifest, members=0)
    with active_directory() as directory:
        directory.add_values(dn, "member", members, batch_size=1000)
    sync_now()
    exchange_calls.clear()  # the preflight job (approval's input) is not the migration's cost, count from here
    migration, job = migrate(tech, mail)
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), log_of(job)
    assert migration.report["members"]["found"] == len(members)
    total = sum(exchange_calls.values())
    print(f"{total} Exchange calls for {len(members)} members: {dict(exchange_calls.most_common())}")
    budget = 2 * FIXED + len(members) * PER_MEMBER  # the preflight job and the migration job
    assert total <= budget, f"{total} Exchange calls for {len(members)} members (budget {budget:.0f}): " \
                            f"{dict(exchange_calls.most_common())}"
    # No read is made per member, and none for the organisation's other lists; Exchange reads only the new
    # list's membership (2 pages), the twin's comes from Graph in both jobs.
    assert exchange_calls["Get-Recipient"] <= 2, dict(exchange_calls)
    assert exchange_calls["Get-DistributionGroupMember"] <= 2, dict(exchange_calls)
