"""Structured values render as people read them: key/value lists and field differences, escaped."""

from types import SimpleNamespace

from portal.jobs.templatetags.present import changes, kv


def test_nested_results_render_as_key_value_lists_with_human_labels():
    html = kv({"migration": 7, "status": "migrated", "post_create_errors": [], "report": {"OK": True},
               "objects": ["CN=a", "CN=b"]})
    assert "<dt>Post create errors</dt><dd>—</dd>" in html and "<dt>OK</dt><dd>Yes</dd>" in html
    assert "<dt>Objects</dt><dd>CN=a, CN=b</dd>" in html
    assert "{'" not in html and "[]" not in html, "never a Python repr"


def test_directory_data_is_escaped():
    html = kv({"display_name": "<script>alert(1)</script>"})
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_audit_changes_are_field_level():
    record = SimpleNamespace(before={"is_active": True, "email": "a@x"}, after={"is_active": False, "email": "a@x"})
    assert changes(record) == [("Is active", True, False)]
    assert changes(SimpleNamespace(before=None, after={"roles": ["Approver"]})) == [("Roles", None, ["Approver"])]


def test_a_dataclass_reads_as_its_fields_never_its_repr() -> None:
    from portal.lab.cloud.store.schema import LabSettings

    html = str(kv(LabSettings(throttle_remaining=3, fault_scope="graph")))
    assert "LabSettings(" not in html
    assert "<dt>Throttle remaining</dt><dd>3</dd>" in html and "<dt>Fault scope</dt><dd>graph</dd>" in html
    assert "<dt>Premium licence</dt><dd>Yes</dd>" in html
