"""The lab cloud's audit and report listings, answered in-process (no server): paging the audit log newest
first stays exact while events arrive, stored objects are answered as stored, and transitive members are
resolved through nested groups and cycles."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.lab.cloud.api import ApiRequest, RawItems, encode_json
from portal.lab.cloud.app import LabCloud
from portal.lab.cloud.auth import GRAPH_RESOURCE, issue_access_token

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def cloud(tmp_path: Path) -> LabCloud:
    return LabCloud(data_dir=tmp_path, tenant_id=str(uuid.uuid4()), initial_domain="contoso.onmicrosoft.com",
                    sync_runner=None, onprem_runner=None, public_base_url=None, token_lifetime=600,
                    sync_in_background=False)


def get(cloud: LabCloud, url: str) -> dict:
    """GET as a client does, the answer read back from the bytes the server would send."""
    token = issue_access_token(key=cloud._key, tenant_id=cloud.tenant_id, client_id="app", audience=GRAPH_RESOURCE,
                               roles=("AuditLog.Read.All", "Directory.Read.All"))
    path, _, query = url.removeprefix("https://lab").partition("?")
    from urllib.parse import parse_qsl

    req = ApiRequest(method="GET", path=path, query=parse_qsl(query, keep_blank_values=True),
                     headers={"authorization": f"Bearer {token}"}, body=b"", base_url="https://lab")
    response = cloud.handle(req)
    assert response.status == 200, response.body
    return json.loads(encode_json(response.body))


def audit(cloud: LabCloud, name: str, minutes: int) -> None:
    cloud.store.add_audit_event(activity_display_name="User registered security info", category="UserManagement",
                                activity_date_time=START + timedelta(minutes=minutes),
                                target_resources=[{"id": name, "displayName": name, "type": "User"}])


def test_paging_the_audit_log_while_events_arrive_neither_repeats_nor_skips_one(cloud: LabCloud) -> None:
    for n in range(5):
        audit(cloud, f"u{n}", n)
    first = get(cloud, "/v1.0/auditLogs/directoryAudits?$top=2")
    assert [e["targetResources"][0]["id"] for e in first["value"]] == ["u4", "u3"]
    audit(cloud, "late", 60)  # newer than everything: Graph lists it first, before the pages already read
    seen = [e["targetResources"][0]["id"] for e in first["value"]]
    link = first.get("@odata.nextLink")
    while link:
        page = get(cloud, link)
        seen += [e["targetResources"][0]["id"] for e in page["value"]]
        link = page.get("@odata.nextLink")
    # paged by offset, the new event pushed u3 onto the second page as well
    assert seen == ["u4", "u3", "u2", "u1", "u0"]


def test_audit_events_at_the_same_moment_are_each_listed_once(cloud: LabCloud) -> None:
    for n in range(7):
        audit(cloud, f"u{n}", 0)
    seen, link = [], "/v1.0/auditLogs/directoryAudits?$top=3"
    while link:
        page = get(cloud, link)
        seen += [e["targetResources"][0]["id"] for e in page["value"]]
        link = page.get("@odata.nextLink")
    assert sorted(seen) == [f"u{n}" for n in range(7)]


def test_report_rows_and_audit_events_are_answered_as_stored(cloud: LabCloud) -> None:
    user = cloud.store.create_user(user_principal_name="ana@contoso.com", display_name="Ana \u00c7elik")
    cloud.store.upsert_registration_details(user_id=user["id"], properties={
        "userPrincipalName": "ana@contoso.com", "userDisplayName": "Ana \u00c7elik", "isMfaCapable": True,
        "methodsRegistered": ["fido2SecurityKey"]})
    audit(cloud, user["id"], 1)
    rows = get(cloud, "/v1.0/reports/authenticationMethods/userRegistrationDetails")["value"]
    assert rows == cloud.store.list_registration_details().items
    assert rows[0]["userDisplayName"] == "Ana \u00c7elik" and rows[0]["methodsRegistered"] == ["fido2SecurityKey"]
    events = get(cloud, "/v1.0/auditLogs/directoryAudits")["value"]
    assert events == cloud.store.list_audit_events().items


def test_stored_json_is_spliced_in_and_a_value_spelling_a_placeholder_stays_a_string() -> None:
    body = {"note": "@raw:0000000000000000:0", "value": RawItems(['{"a":1}', '{"b":[2,"x"]}']),
            "empty": RawItems([])}
    assert json.loads(encode_json(body)) == {"note": "@raw:0000000000000000:0", "value": [{"a": 1}, {"b": [2, "x"]}],
                                             "empty": []}
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_json({"when": START})


def test_transitive_members_through_nested_groups_and_a_cycle(cloud: LabCloud) -> None:
    store = cloud.store
    outer, inner = (store.create_group(display_name=n, mail_nickname=n) for n in ("outer", "inner"))
    users = [store.create_user(user_principal_name=f"u{n}@contoso.com", display_name=f"U{n}") for n in range(3)]
    store.add_member(group_id=outer["id"], member_id=users[0]["id"])
    store.add_member(group_id=outer["id"], member_id=inner["id"])
    store.add_member(group_id=inner["id"], member_id=users[1]["id"])
    store.add_member(group_id=inner["id"], member_id=users[2]["id"])
    store.add_member(group_id=inner["id"], member_id=outer["id"])  # a cycle
    assert sorted(store.transitive_member_ids(group_id=outer["id"])) == sorted(
        [inner["id"], *(u["id"] for u in users)])
    assert sorted(store.transitive_group_ids_of(member_id=users[1]["id"])) == sorted([inner["id"], outer["id"]])
    listed = get(cloud, f"/v1.0/groups/{outer['id']}/transitiveMembers?$select=id")["value"]
    assert sorted(m["id"] for m in listed) == sorted([inner["id"], *(u["id"] for u in users)])


def test_transitive_members_are_resolved_once_per_membership_change_whoever_makes_it(cloud: LabCloud,
                                                                                      tmp_path: Path) -> None:
    from portal.lab.cloud.store import CloudStore

    store = cloud.store
    outer, inner = (store.create_group(display_name=n, mail_nickname=n) for n in ("outer", "inner"))
    users = [store.create_user(user_principal_name=f"u{n}@contoso.com", display_name=f"U{n}") for n in range(6)]
    store.set_members(group_id=outer["id"], member_ids=[inner["id"], *(u["id"] for u in users[:2])])
    store.set_members(group_id=inner["id"], member_ids=[u["id"] for u in users[2:5]])
    closures: list[str] = []
    store._conn().set_trace_callback(lambda sql: closures.append(sql) if "WITH RECURSIVE" in sql else None)

    def listed(cast: str = "") -> list[str]:
        seen, link = [], f"/v1.0/groups/{outer['id']}/transitiveMembers{cast}?$select=id&$top=2"
        while link:
            page = get(cloud, link)
            seen += [m["id"] for m in page["value"]]
            link = page.get("@odata.nextLink")
        return sorted(seen)

    assert listed() == sorted([inner["id"], *(u["id"] for u in users[:5])])  # three pages
    assert len(closures) == 1
    # the same closure, read through a type cast that leaves the nested group out of each page it falls in
    assert listed("/microsoft.graph.user") == sorted(u["id"] for u in users[:5])
    assert len(closures) == 1
    other = CloudStore.open(data_dir=tmp_path)  # another connection, as the seeder or the sync engine in a process
    try:
        other.add_member(group_id=inner["id"], member_id=users[5]["id"])
        assert listed() == sorted([inner["id"], *(u["id"] for u in users)])
        assert len(closures) == 2
        other.remove_member(group_id=outer["id"], member_id=inner["id"])
        assert listed() == sorted(u["id"] for u in users[:2])
    finally:
        other.close()
