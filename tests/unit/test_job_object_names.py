"""A job's page names the object it made or acts on, with a link, as a migration job's page does
("Migration #7 (job #12)"): an MFA snapshot, an address scan, an address fix, MFA wave groups."""

from __future__ import annotations

import pytest
from django.utils import timezone

from diagnostics_app.models import AddressScan, MfaSnapshot
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db


def _job(kind: str, user, **extra) -> Job:
    return Job.objects.create(kind=kind, name=kind, user=user, status=JobStatus.SUCCEEDED,
                              finished_at=timezone.now(), **extra)


def test_an_mfa_snapshot_job_names_its_snapshot_once_it_is_stored(client, role_users):
    admin = role_users["Administrator"]
    client.force_login(admin)
    job = _job("mfa_snapshot", admin)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "for MFA snapshot" not in page  # nothing stored yet: nothing named, nothing linked
    snapshot = MfaSnapshot.objects.create(taken_at=timezone.now(), job=job)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'<span class="muted">job #{job.pk} · for MFA snapshot #{snapshot.pk}</span></h1>' in page
    assert f'<a href="/diagnostics/mfa/?snapshot={snapshot.pk}" id="job-object">MFA snapshot #{snapshot.pk}</a>' in page


def test_an_address_scan_job_names_its_scan(client, role_users):
    admin = role_users["Administrator"]
    client.force_login(admin)
    job = _job("address_scan", admin)
    scan = AddressScan.objects.create(job=job)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f"job #{job.pk} · for Address scan #{scan.pk}</span></h1>" in page
    assert f'id="job-object">Address scan #{scan.pk}</a>' in page and f"?scan={scan.pk}" in page


def test_address_fix_and_wave_group_jobs_name_their_object(client, role_users):
    from diagnostics_app.models import AddressFix, MfaWaveGroups

    admin = role_users["Administrator"]
    client.force_login(admin)
    fix = AddressFix.objects.create(requested_by=admin, plan={"changes": []}, plan_hash="0" * 64)
    job = _job("address_fix_verify", admin, params={"fix": fix.pk})
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'<a href="/diagnostics/address-repair/fixes/{fix.pk}/" id="job-object">Address fix #{fix.pk}</a>' in page
    assert MfaWaveGroups.objects.count() == 0
    orphan = _job("mfa_wave_groups", admin, params={"wave_groups": 999})
    assert "id=\"job-object\"" not in client.get(f"/jobs/{orphan.pk}/").content.decode()  # gone: no dead link
