"""The lab cloud's ``onPremisesSyncBehavior`` (Graph v1.0 and beta), answered in-process (no server, no AD):
permission, validation, the flag, the directory audit events, and the Entra Connect build number."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from portal.lab.cloud.api import ApiRequest
from portal.lab.cloud.app import LabCloud
from portal.lab.cloud.auth import GRAPH_RESOURCE, issue_access_token
from portal.lab.cloud.graph_directory import SOA_AUDIT_CONVERT, SOA_AUDIT_UNDO
from portal.lab.sync.authority import build_tuple

SOA = "Group-OnPremisesSyncBehavior.ReadWrite.All"


@pytest.fixture
def cloud(tmp_path: Path) -> LabCloud:
    return LabCloud(data_dir=tmp_path, tenant_id=str(uuid.uuid4()), initial_domain="contoso.onmicrosoft.com",
                    sync_runner=None, onprem_runner=None, public_base_url=None, token_lifetime=600,
                    sync_in_background=False)


def call(cloud: LabCloud, method: str, path: str, body: object = None, roles: tuple[str, ...] = (SOA,)):
    token = issue_access_token(key=cloud._key, tenant_id=cloud.tenant_id, client_id="app", audience=GRAPH_RESOURCE,
                               roles=roles)
    req = ApiRequest(method=method, path=path, query=[], headers={"authorization": f"Bearer {token}"},
                     body=json.dumps(body).encode() if body is not None else b"", base_url="https://lab")
    return cloud.handle(req)


def synced_group(cloud: LabCloud) -> dict:
    return cloud.store.create_group(display_name="Sales", mail_enabled=True, security_enabled=False,
                                    mail="sales@contoso.com", mail_nickname="sales",
                                    on_premises_sync_enabled=True, source_anchor="anchor-sales")


@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_group_handed_to_the_cloud_and_back_with_the_audit_events(cloud: LabCloud, version: str) -> None:
    group = synced_group(cloud)
    path = f"/{version}/groups/{group['id']}/onPremisesSyncBehavior"
    before = call(cloud, "GET", path)
    assert before.status == 200 and before.body["isCloudManaged"] is False and before.body["id"] == group["id"]

    assert call(cloud, "PATCH", path, {"isCloudManaged": True}).status == 204
    assert call(cloud, "GET", path).body["isCloudManaged"] is True
    # Graph unblocks cloud edits at once; onPremisesSyncEnabled is cleared by the next sync cycle
    assert cloud.store.get_object(object_id=group["id"])["onPremisesSyncEnabled"] is True

    assert call(cloud, "PATCH", path, {"isCloudManaged": False}).status == 204
    assert call(cloud, "GET", path).body["isCloudManaged"] is False
    events = cloud.store.list_audit_events(limit=10).items
    activities = sorted(e["activityDisplayName"] for e in events)
    assert activities == sorted([SOA_AUDIT_CONVERT, SOA_AUDIT_UNDO])
    converted = next(e for e in events if e["activityDisplayName"] == SOA_AUDIT_CONVERT)
    assert converted["targetResources"][0]["id"] == group["id"]


def test_refusals_without_the_permission_on_a_cloud_group_and_on_bad_bodies(cloud: LabCloud) -> None:
    group = synced_group(cloud)
    path = f"/v1.0/groups/{group['id']}/onPremisesSyncBehavior"
    denied = call(cloud, "PATCH", path, {"isCloudManaged": True}, roles=("Group.ReadWrite.All",))
    assert denied.status == 403 and denied.body["error"]["code"] == "Authorization_RequestDenied"
    assert call(cloud, "GET", path, roles=("Directory.ReadWrite.All",)).status == 403

    bad = call(cloud, "PATCH", path, {"isCloudManaged": "yes"})
    assert bad.status == 400 and "isCloudManaged" in bad.body["error"]["message"]
    assert call(cloud, "PATCH", path, {"displayName": "x"}).status == 400

    cloud_only = cloud.store.create_group(display_name="Cloud", mail_enabled=False, security_enabled=True)
    refused = call(cloud, "PATCH", f"/v1.0/groups/{cloud_only['id']}/onPremisesSyncBehavior", {"isCloudManaged": True})
    assert refused.status == 400 and "not synchronized" in refused.body["error"]["message"]
    assert call(cloud, "GET", "/v1.0/groups/00000000-0000-0000-0000-000000000000/onPremisesSyncBehavior").status == 404
    assert cloud.store.list_audit_events(limit=10).items == []


def test_a_cloud_managed_group_is_editable_in_graph_before_the_cycle(cloud: LabCloud) -> None:
    group = cloud.store.create_group(display_name="Team", mail_enabled=False, security_enabled=True,
                                     on_premises_sync_enabled=True, source_anchor="anchor-team")
    roles = (SOA, "Group.ReadWrite.All")
    assert call(cloud, "PATCH", f"/v1.0/groups/{group['id']}", {"description": "x"}, roles=roles).status == 400
    call(cloud, "PATCH", f"/v1.0/groups/{group['id']}/onPremisesSyncBehavior", {"isCloudManaged": True})
    assert call(cloud, "PATCH", f"/v1.0/groups/{group['id']}", {"description": "x"}, roles=roles).status == 204


def test_entra_connect_reports_its_build_and_the_lab_can_set_an_old_one(cloud: LabCloud) -> None:
    assert build_tuple(cloud.store.connect_version()) >= (2, 5, 76, 0)
    cloud.store.set_connect_version(version="2.4.129.0")
    out = cloud._entra_connect("Get-ADSyncGlobalSettings", {})
    params = {p["Name"]: p["Value"] for p in out["output"][0]["Parameters"]}
    assert params["Microsoft.Synchronize.ServerConfigurationVersion"] == "2.4.129.0"
    with pytest.raises(ValueError, match="four-part"):
        cloud.store.set_connect_version(version="2.5")
    assert build_tuple("2.5.76.0") > build_tuple("2.5.3.0") and build_tuple("garbage") == (0,)
