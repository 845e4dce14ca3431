"""The lab cloud process runs sync cycles without Django settings: it must find the lab where the portal
put it (a package move once pointed it at portal/var/lab, and every demo sync cycle failed)."""

from __future__ import annotations

from pathlib import Path

from portal.lab.sync.runner import lab_dir_from_environment

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_var_dir_the_lab_is_under_the_checkouts_var(monkeypatch):
    monkeypatch.delenv("DIROPS_VAR_DIR", raising=False)
    monkeypatch.delenv("LAB_DIR", raising=False)
    assert lab_dir_from_environment() == ROOT / "var" / "lab"
    assert (ROOT / "manage.py").exists()


def test_the_var_dir_and_lab_dir_variables_win(monkeypatch, tmp_path):
    monkeypatch.setenv("DIROPS_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("LAB_DIR", raising=False)
    assert lab_dir_from_environment() == tmp_path / "lab"
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "elsewhere"))
    assert lab_dir_from_environment() == tmp_path / "elsewhere"
