import csv
import io

from apps.core.spreadsheets import SafeCsvWriter, spreadsheet_cell, spreadsheet_text


def test_formula_triggers_are_escaped():
    for text in ("=1+1", "+1+1", "-1+1", "@A1", "\t=1", "\r=1", '=HYPERLINK("x")', "-"):
        assert spreadsheet_text(text) == "'" + text


def test_numbers_and_ordinary_text_are_left_alone():
    for text in ("-12", "+3.5", "-0.25", "1e-3", "-1E+6", "Ada Ampere", "", "a=b", "ESR-1"):
        assert spreadsheet_text(text) == text
    assert spreadsheet_cell(-5) == -5
    assert spreadsheet_cell(None) is None


def test_csv_writer_escapes_every_cell():
    out = io.StringIO()
    SafeCsvWriter(out, lineterminator="\n").writerows([["=1+1", 3, "ok"], ["@x", "-7", None]])
    assert out.getvalue() == "'=1+1,3,ok\n'@x,-7,\n"


def test_a_carriage_return_inside_a_field_cannot_start_a_new_row():
    out = io.StringIO()
    SafeCsvWriter(out, lineterminator="\n").writerows([["\r=1+1", 2], ["a", "b"]])
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows == [["'\r=1+1", "2"], ["a", "b"]]
