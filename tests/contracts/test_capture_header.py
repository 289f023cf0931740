"""The CSV header rule that serving and the drift monitor share: they must split a captured body the same way."""

import pytest

from contracts.capture import is_csv_header


def test_a_row_of_names_is_a_header() -> None:
    assert is_csv_header(["sex", " length ", "diameter"])


@pytest.mark.parametrize(
    "row",
    [["sex", "0.455"], ["sex", ""], ["sex", "  "], ["sex", "1e3"], ["sex", "nan"]],
    ids=["a number", "an empty cell", "a blank cell", "an exponent", "nan"],
)
def test_a_row_with_a_number_or_an_empty_cell_is_data(row: list[str]) -> None:
    assert not is_csv_header(row)
