"""The in-place method's recommendation, version check and preflight checks, judged from facts (no directory)."""

from __future__ import annotations

import pytest

from migrations_app.inplace import (
    InPlaceEnvironment,
    MethodFacts,
    check_in_place,
    client_supports_in_place,
    parse_version,
    recommend_method,
)
from migrations_app.options import InvalidOptions, MigrationOptions


def good_facts(**changes) -> MethodFacts:
    return MethodFacts(**{"sync_version": "2.5.79.0", "recipient_type": "MailUniversalDistributionGroup",
                          "cloud_managed": False, **changes})


def good_env(**changes) -> InPlaceEnvironment:
    return InPlaceEnvironment(**{"group_id": "g1", "permission": True, "recycle_bin": True, "pending_exports": [],
                                 **changes})


def outcomes(checks) -> dict[str, str]:
    return {c.key: c.outcome for c in checks}


@pytest.mark.parametrize(("version", "ok"), [
    ("2.5.76.0", True), ("2.5.79.0", True), ("2.6.1.0", True), ("3.0.0.0", True),
    ("2.5.3.0", False), ("2.4.131.0", False), ("1.6.16.0", False), ("", False), (None, False), ("2.5.x", False),
])
def test_sync_client_version_threshold_is_2_5_76_0(version, ok) -> None:
    assert client_supports_in_place(version) is ok


def test_versions_compare_as_numbers_not_text() -> None:
    assert parse_version("2.5.100.0") > parse_version("2.5.76.0")
    assert parse_version(" 2.5.76.0 ") == (2, 5, 76, 0)
    assert parse_version("garbage") is None


def test_a_plain_synced_list_on_a_current_client_is_recommended_in_place() -> None:
    rec = recommend_method(good_facts(parent_lists=["CN=Parent"], onprem_dependencies=2))
    assert rec.method == "in_place"
    favours = {r["fact"]: r["favours"] for r in rec.reasons}
    assert favours["sync_client"] == "in_place" and favours["parents"] == "in_place"
    assert favours["onprem_senders"] == "in_place"


@pytest.mark.parametrize(("changes", "fact"), [
    ({"sync_version": "2.4.131.0"}, "sync_client"),
    ({"sync_version": None}, "sync_client"),
    ({"dynamic": True}, "dynamic"),
    ({"cloud_managed": True}, "cloud_managed"),
    ({"recipient_type": "RoomList"}, "list_type"),
    ({"recreate_artefacts": ["MigratedByScript stamp on CN=x"]}, "recreate_artefacts"),
])
def test_each_blocking_fact_recommends_recreate_and_says_why(changes, fact) -> None:
    rec = recommend_method(good_facts(**changes))
    assert rec.method == "recreate"
    assert any(r["fact"] == fact and r["favours"] == "recreate" for r in rec.reasons), rec.reasons


def test_children_still_on_premises_lean_to_recreate_without_blocking() -> None:
    rec = recommend_method(good_facts(child_lists=["CN=A", "CN=B"], children_on_premises=["CN=B"]))
    assert rec.method == "in_place"
    nesting = next(r for r in rec.reasons if r["fact"] == "nesting")
    assert nesting["favours"] == "recreate" and "1 child list" in nesting["text"]


def test_in_place_checks_pass_for_a_ready_list_and_state_the_mail_enabled_caveat() -> None:
    checks = check_in_place(mf=good_facts(), env=good_env(), options=MigrationOptions(method="in_place"),
                            group_dn="CN=Sales")
    result = outcomes(checks)
    assert [k for k, v in result.items() if v == "failure"] == []
    assert result["mail_enabled_support"] == "warning"
    note = next(c for c in checks if c.key == "mail_enabled_support").detail
    assert "disagree" in note


@pytest.mark.parametrize(("mf", "env", "key"), [
    ({"sync_version": "2.5.3.0"}, {}, "sync_client"),
    ({}, {"permission": False}, "soa_permission"),
    ({}, {"permission": None}, "soa_permission"),
    ({"cloud_managed": True}, {}, "not_cloud_managed"),
    ({"cloud_managed": None}, {}, "not_cloud_managed"),
    ({"dynamic": True}, {}, "in_place_type"),
    ({"recreate_artefacts": ["renamed original CN=!x"]}, {}, "recreate_artefacts"),
    ({"children_on_premises": ["CN=Child"], "child_lists": ["CN=Child"]}, {}, "in_place_children"),
    ({}, {"pending_exports": ["Update CN=Sales"]}, "pending_export"),
])
def test_each_bad_fact_fails_its_in_place_check(mf, env, key) -> None:
    checks = check_in_place(mf=good_facts(**mf), env=good_env(**env), options=MigrationOptions(method="in_place"),
                            group_dn="CN=Sales")
    assert outcomes(checks)[key] == "failure"


def test_children_left_on_premises_on_purpose_and_no_recycle_bin_only_warn() -> None:
    checks = check_in_place(mf=good_facts(children_on_premises=["CN=Child"], child_lists=["CN=Child"]),
                            env=good_env(recycle_bin=None, pending_exports=None),
                            options=MigrationOptions(method="in_place", skip_nested_group_check=True),
                            group_dn="CN=Sales")
    result = outcomes(checks)
    assert result["in_place_children"] == result["recycle_bin"] == result["pending_export"] == "warning"


def test_method_option_is_validated_and_defaults_to_recreate() -> None:
    assert MigrationOptions().method == "recreate"
    with pytest.raises(InvalidOptions, match="method must be recreate or in_place"):
        MigrationOptions(method="sideways")


def test_the_planned_method_decides_which_process_runs() -> None:
    from migrations_app import engine
    from migrations_app.inplace import InPlaceProcess, process_for
    from migrations_app.models import Migration

    assert process_for(Migration(options={"method": "in_place"}, method="in_place")) is InPlaceProcess
    assert process_for(Migration(options={}, method="recreate")) is engine.MigrationProcess
    # created by code that set only the options (what an approval pins): the options win
    assert process_for(Migration(options={"method": "in_place"})) is InPlaceProcess
    assert InPlaceProcess.steps.index(InPlaceProcess.point_of_no_return) > InPlaceProcess.steps.index("verify")
