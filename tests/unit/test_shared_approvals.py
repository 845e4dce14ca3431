"""portal/approvals: the one sign-off every area uses (DL migrations, address fixes, writeback plans, MFA wave
groups; DL batches share its forms, validity and hash)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied

import diagnostics_app.addresses.fixes as address_fixes
import diagnostics_app.addresses.views as address_views
import diagnostics_app.mfa.wave_services as wave_services
import diagnostics_app.writeback.services as writeback_services
import migrations_app.batch_services as batch_services
import migrations_app.forms as migration_forms
import migrations_app.services as migration_services
from diagnostics_app.addresses.fixes import FixRefused
from migrations_app.services import MigrationRefused
from portal.approvals import (
    ApprovalRefused,
    ApproveForm,
    PinnedApproveForm,
    RejectForm,
    check_approval_validity,
    plan_hash,
    signoff,
)

SIGNOFFS = [migration_services.MIGRATION_SIGNOFF, address_fixes.FIX_SIGNOFF, writeback_services.PLAN_SIGNOFF,
            wave_services.WAVES_SIGNOFF]


def test_every_area_uses_the_same_code():
    assert migration_forms.ApproveForm is ApproveForm is address_views.ApproveForm
    assert migration_forms.RejectForm is RejectForm is address_views.RejectForm
    assert issubclass(migration_forms.BatchApproveForm, PinnedApproveForm)
    assert batch_services.check_approval_validity is check_approval_validity is signoff.check_approval_validity
    assert all(isinstance(spec, signoff.SignOff) for spec in SIGNOFFS)
    assert len({spec.model for spec in SIGNOFFS}) == len({spec.audit for spec in SIGNOFFS}) == len(SIGNOFFS)


@pytest.mark.parametrize("spec", SIGNOFFS, ids=lambda spec: spec.audit)
def test_every_area_refuses_alike(spec):
    """No permission, one's own request, a request not awaiting approval: refused the same way everywhere."""
    def request(status, requester):
        return SimpleNamespace(pk=7, status=status, requested_by_id=requester, version=1, mail="dl@contoso.com",
                               get_status_display=lambda: "Approved")

    nobody = SimpleNamespace(pk=1, has_perm=lambda perm: False)
    approver = SimpleNamespace(pk=2, has_perm=lambda perm: perm == spec.permission)
    with pytest.raises(PermissionDenied, match="needs the Approver or Administrator role"):
        signoff.check_can_sign(spec, obj=request(spec.awaiting, 1), user=nobody)
    with pytest.raises(spec.refused, match="^Four eyes: someone other than"):
        signoff.check_can_sign(spec, obj=request(spec.awaiting, 2), user=approver)
    with pytest.raises(spec.refused, match="approved, not awaiting approval"):
        signoff.check_can_sign(spec, obj=request("approved", 1), user=approver)


def test_the_approve_form_says_what_to_correct():
    form = ApproveForm({"valid_hours": "4"})
    assert not form.is_valid() and form.problem().startswith("Tick the confirmation")
    form = ApproveForm({"valid_hours": "0", "confirm": "on"})
    assert not form.is_valid() and form.problem().startswith("The approval's validity must be a positive number")
    form = ApproveForm({"valid_hours": "", "confirm": "on"})
    assert form.is_valid() and form.valid_for is None
    form = ApproveForm({"valid_hours": "1.5", "confirm": "on"})
    assert form.is_valid() and form.valid_for == timedelta(minutes=90)
    assert not PinnedApproveForm({"valid_hours": "4", "confirm": "on"}).is_valid()  # the shown hash is required
    assert RejectForm({"reason": " "}).reason_given == "" and RejectForm({"reason": "no"}).reason_given == "no"


def test_plan_hash_is_canonical_and_pins_every_value():
    plan = {"b": [1, 2], "a": {"y": "é", "x": None}}
    assert plan_hash(plan) == plan_hash({"a": {"x": None, "y": "é"}, "b": [1, 2]})
    assert plan_hash(plan) != plan_hash({**plan, "b": [2, 1]})
    assert len(plan_hash(plan)) == 64


@pytest.mark.parametrize("refused", [ApprovalRefused, MigrationRefused, FixRefused])
def test_validity_defaults_bounds_and_raises_the_area_s_refusal(settings, refused):
    settings.DL_APPROVAL_DEFAULT_VALID_HOURS, settings.DL_APPROVAL_MAX_VALID_HOURS = 6, 72
    assert check_approval_validity(None, refused=refused) == timedelta(hours=6)
    assert check_approval_validity(timedelta(hours=72), refused=refused) == timedelta(hours=72)
    for wrong in (timedelta(0), timedelta(hours=-1), timedelta(hours=73)):
        with pytest.raises(refused, match=r"valid for at most 3 day\(s\)"):
            check_approval_validity(wrong, refused=refused)


def test_forms_judge_the_fields_alike():
    assert not ApproveForm({"valid_hours": "4"}).is_valid()
    assert ApproveForm({"valid_hours": "4", "confirm": "on"}).is_valid()
    assert not ApproveForm({"valid_hours": "0", "confirm": "on"}).is_valid()
    assert not RejectForm({"reason": ""}).is_valid() and RejectForm({"reason": "not now"}).is_valid()
