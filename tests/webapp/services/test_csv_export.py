"""services/csv_export.py: what a spreadsheet would read as a formula gets an apostrophe;
phone numbers and numbers stay as they are."""

from __future__ import annotations

import csv
import io

import pytest

from webapp.services.csv_export import cell, writer


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("https://evil.example","Click")',
        "=1+1",
        "@SUM(A1:A9)",
        "-2+3",
        "- called back, wants a discount",
        "+cmd|' /C calc'!A0",
        "+SUM(A1)",
        "+1+A1",
        '+"text"',
        "+",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_a_formula_gets_an_apostrophe(text):
    assert cell(text) == "'" + text


@pytest.mark.parametrize(
    "value",
    [
        "+15550100",
        "+7 916 123-45-67",
        "+1 (212) 555.0123",
        "Ivan Petrov",
        "sip:201@pbx",
        "2026-10-24 10:30:00",
        "a = b",
        "",
        -5,
        120.0,
        None,
    ],
)
def test_phone_numbers_text_and_numbers_stay_as_they_are(value):
    assert cell(value) == value


def test_the_writer_neutralises_every_cell_of_a_row():
    out = io.StringIO()
    writer(out, delimiter=";").writerow(["=1+1", "+15550100", "@x", 3, "ok"])
    assert next(csv.reader(io.StringIO(out.getvalue()), delimiter=";")) == [
        "'=1+1",
        "+15550100",
        "'@x",
        "3",
        "ok",
    ]
