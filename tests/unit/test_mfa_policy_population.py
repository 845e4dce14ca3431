"""The Conditional access page counts the same accounts as the registration report: enabled ones. A disabled
account a policy names is left out of its figures and its user list, and counted apart."""

from __future__ import annotations

import pytest

from diagnostics_app.mfa import policies as mp
from diagnostics_app.mfa import policy_selectors
from diagnostics_app.mfa.choices import PolicyOutcome
from diagnostics_app.mfa.collect_policies import PolicyRead, evaluate_users
from diagnostics_app.mfa.services import do_store_snapshot
from diagnostics_app.models import MfaPolicy
from tests.unit.test_mfa_report_pages import make_result

pytestmark = pytest.mark.django_db


def _stored_with_an_all_users_policy():
    result = make_result()
    users = {"includeUsers": ["All"]}
    result.policy_read = read = PolicyRead(
        read=True, policies=[mp.Policy("p-all", "Require MFA for everyone", mp.ENABLED, users, mp.MFA_GRANT)],
        details=[{"policy_id": "p-all", "display_name": "Require MFA for everyone", "state": mp.ENABLED,
                  "users": users, "demand": mp.MFA_GRANT.as_json(), "conditions": {}, "controls": {},
                  "modified": None, "problems": []}])
    evaluate_users(result, read)
    return do_store_snapshot(result)


def test_a_policys_figures_count_enabled_accounts_as_the_report_does(client, role_users):
    snapshot = _stored_with_an_all_users_policy()
    policy = MfaPolicy.objects.get(snapshot=snapshot)
    # old@contoso.com is disabled and cannot answer: the report leaves it out, and so does the policy now
    assert policy.left_out == 1
    outcomes = {o["value"]: o["count"] for o in policy_selectors.outcome_breakdown(snapshot)}
    assert policy.interrupted == outcomes[PolicyOutcome.INTERRUPTED] > 0
    assert policy.able == outcomes[PolicyOutcome.ABLE]
    assert policy.in_scope == sum(outcomes.values())
    listed = policy_selectors.policy_users(policy)
    assert listed.count() == policy.in_scope and not listed.filter(upn="old@contoso.com").exists()
    assert policy_selectors.policy_users(policy, status="interrupted").count() == policy.interrupted

    client.force_login(role_users["Auditor"])
    page = client.get("/diagnostics/mfa/policies/").content.decode()
    assert "count enabled accounts, as the outcome table above and the registration report do" in page
    assert "Disabled, left out" in page
    one = client.get(f"/diagnostics/mfa/policies/{policy.pk}/").content.decode()
    assert "1 disabled or deleted account it names is left out" in one and "old@contoso.com" not in one
