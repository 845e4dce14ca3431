"""The address scan's findings on a varied generated directory (tests/unit/address_dataset.py) equal the ones
recorded before the scan was optimised for speed (tests/unit/data/address_golden.json): counts per rule,
attribute and severity, so that a difference is readable, and a digest of every field of every finding and of
the skipped list, so that no explanation, proposed value or fix changes unnoticed.

A deliberate change of a rule changes the golden: regenerate it with
``.venv/bin/python tests/unit/test_address_golden.py --update`` and say why in the commit."""

from __future__ import annotations

import collections
import hashlib
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "address_golden.json"


def run(config_name: str) -> tuple[list[dict], list]:
    from diagnostics_app.addresses.rules import evaluate
    from tests.unit.address_dataset import CONFIGS, dataset

    entries, tenant, errors = dataset()
    config = CONFIGS[config_name]
    if config_name == "full":
        config = type(config)(**{**config.__dict__, "export_errors": errors})
    found, skipped = evaluate(entries, config=config, tenant=tenant)
    return [f.as_dict() for f in found], skipped


def summary(findings: list[dict], skipped: list) -> dict:
    counts = collections.Counter(f"{f['rule']}/{f['attribute']}/{f['severity']}" for f in findings)
    # Order-free: the scan may produce findings in another order, never other findings.
    canonical = sorted(json.dumps(f, sort_keys=True, ensure_ascii=True) for f in findings)
    digest = hashlib.sha256("\n".join([*canonical, json.dumps(sorted(map(list, skipped)))]).encode()).hexdigest()
    return {"findings": len(findings), "skipped": len(skipped), "counts": dict(sorted(counts.items())),
            "sha256": digest}


@pytest.mark.parametrize("config_name", ["full", "bare"])
def test_findings_on_a_varied_directory_equal_the_recorded_ones(config_name):
    expected = json.loads(GOLDEN.read_text())[config_name]
    actual = summary(*run(config_name))
    assert actual["counts"] == expected["counts"]
    assert (actual["findings"], actual["skipped"]) == (expected["findings"], expected["skipped"])
    assert actual["sha256"] == expected["sha256"], "same counts, but some finding's content differs"


def test_the_dataset_exercises_every_rule():
    # The golden only guards what the data makes the rules produce.
    rules = {f["rule"] for name in ("full", "bare") for f in run(name)[0]}
    from diagnostics_app.addresses.rules import Rule

    assert rules == {r.value for r in Rule}


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the rules are pure: no Django setup
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({name: summary(*run(name)) for name in ("full", "bare")}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
