"""portal/exports.py: every download (MFA report and policies, address findings, writeback plans, batch reports,
the audit log) writes its cells one way: formulas inert, characters a worksheet refuses replaced, not fatal."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import load_workbook

from diagnostics_app.mfa import exports as mfa_exports
from portal.exports import csv_lines, filename, safe_cell, xlsx_bytes


def test_csv_lines_stream_the_header_then_each_row_with_formulas_inert():
    lines = csv_lines(["name", "n"], iter([["=HYPERLINK(\"x\")", 1], ["-1", None], ["plain", 2]]))
    assert next(lines) == "name,n\r\n"
    assert list(lines) == ['"\'=HYPERLINK(""x"")",1\r\n', "'-1,\r\n", "plain,2\r\n"]
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)" and safe_cell(5) == 5


def test_a_workbook_keeps_control_characters_from_failing_the_export():
    data = xlsx_bytes(title="Rows", header=["name", "n"], rows=[["bell\x07name", 1], ["+cmd", 2]],
                      summary=[["note", "=1+1"], ["count", 2]])
    book = load_workbook(io.BytesIO(data))
    rows = list(book["Rows"].values)
    assert rows == [("name", "n"), ("bell\ufffdname", 1), ("'+cmd", 2)]
    assert book["Rows"].freeze_panes == "A2" and book["Rows"].auto_filter.ref == "A1:B3"
    assert list(book["Summary"].values) == [("note", "'=1+1"), ("count", 2)]


def test_the_mfa_workbook_survives_a_display_name_with_a_control_character():
    # It escaped formulas only: one such name in a 100,000-user tenant failed the whole XLSX export.
    data = mfa_exports._xlsx("MFA registration", ["upn", "display_name"],
                             [{"upn": "a@contoso.com", "display_name": "Ann\x0bBell"}], [["users", 1]])
    assert list(load_workbook(io.BytesIO(data))["MFA registration"].values)[1] == ("a@contoso.com", "Ann\ufffdBell")


def test_file_names_say_what_and_which_filter():
    when = datetime(2026, 12, 2, 9, 5)
    assert filename("mfa-registration", 3, when, "csv") == "mfa-registration-3-20261202-0905.csv"
    assert filename("address-findings", 4, when, "xlsx", {"rule": "x500 only", "severity": "", "ou": None}) \
        == "address-findings-4-20261202-0905-rule-x500_only.xlsx"
    assert filename("writeback-plan", "v2", None, "csv") == "writeback-plan-v2.csv"
