"""Text helpers: markdown tables padded to their widest cell, compact counts, an error's first line."""

from ignite_cv.utils.text import first_line, human_count, markdown_table


def test_markdown_table_pads_columns_to_their_widest_cell():
    assert markdown_table(["a", "bb"], [["xyz", 1]]) == "| a   | bb |\n|-----|----|\n| xyz | 1  |\n"


def test_counts_use_three_significant_digits_and_si_units():
    assert [human_count(n) for n in (999, 1_000, 12_345_678, 2.5e9)] == ["999", "1K", "12.3M", "2.5G"]


def test_first_line_of_an_error():
    assert first_line(ValueError("\n  first\nsecond")) == "first"
    assert first_line(KeyError()) == "KeyError"
