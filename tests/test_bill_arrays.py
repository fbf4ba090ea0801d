"""Array literals of the bulk statements (plain Python, tools/sql_arrays)."""

from datetime import date
from decimal import Decimal

import pytest
from prepaid_billing_tools.sql_arrays import array_literal


def test_strings_are_quoted_and_escaped():
    literal = array_literal(
        ["M1 flat", 'say "hi"', "back\\slash", "{a,b}", "", "NULL", None]
    )
    assert literal == (
        '{"M1 flat","say \\"hi\\"","back\\\\slash","{a,b}","","NULL",NULL}'
    )


def test_empty_list_and_booleans():
    assert array_literal([]) == "{}"
    with pytest.raises(TypeError):
        array_literal([False])


def test_numbers_and_dates_are_plain():
    assert array_literal([1, None, 2]) == "{1,NULL,2}"
    assert array_literal([Decimal("1.50"), 0.25]) == "{1.50,0.25}"
    assert array_literal([date(2026, 1, 31)]) == "{2026-01-31}"
