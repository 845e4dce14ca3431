"""portal/approvals: the one sign-off module DL migrations, DL batches and Address repair fixes use."""

from __future__ import annotations

from datetime import timedelta

import pytest

import diagnostics_app.addresses.fixes as address_fixes
import diagnostics_app.addresses.views as address_views
import migrations_app.batch_services as batch_services
import migrations_app.forms as migration_forms
import migrations_app.services as migration_services
from diagnostics_app.addresses.fixes import FixRefused
from migrations_app.services import MigrationRefused
from portal.approvals import ApprovalRefused, ApproveForm, RejectForm, check_approval_validity, plan_hash


def test_every_area_uses_the_same_code():
    assert migration_forms.ApproveForm is ApproveForm is address_views.ApproveForm
    assert migration_forms.RejectForm is RejectForm is address_views.RejectForm
    assert issubclass(migration_forms.BatchApproveForm, ApproveForm)
    assert migration_services.check_approval_validity is check_approval_validity
    assert batch_services.check_approval_validity is check_approval_validity
    assert address_fixes.check_approval_validity is check_approval_validity


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
