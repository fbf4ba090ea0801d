"""How a rebuild of the daily use is cut into calls of bounded size."""

from datetime import date, timedelta

import pytest
from prepaid_billing_tools.rebuild import Piece, pieces


def covered(found):
    """Every (meter, day) the pieces cover, with how often."""
    seen = {}
    for piece in found:
        day = piece.date_from
        while day <= piece.date_to:
            for meter_id in piece.meter_ids:
                seen[(meter_id, day)] = seen.get((meter_id, day), 0) + 1
            day += timedelta(days=1)
    return seen


def test_a_small_scope_is_one_piece():
    found = list(pieces([1, 2], date(2026, 1, 1), date(2026, 3, 31)))
    assert found == [Piece([1, 2], date(2026, 1, 1), date(2026, 3, 31))]


def test_pieces_cover_every_meter_day_exactly_once():
    meter_ids = list(range(1, 12))
    date_from, date_to = date(2025, 12, 30), date(2026, 1, 9)
    found = list(pieces(meter_ids, date_from, date_to, meters=4, meter_days=10))
    seen = covered(found)
    assert len(seen) == 11 * 11
    assert set(seen.values()) == {1}


def test_a_piece_stays_within_its_meter_and_meter_day_budget():
    found = list(
        pieces(range(1, 1201), date(2026, 1, 1), date(2026, 12, 31), meter_days=1000)
    )
    assert max(len(piece.meter_ids) for piece in found) == 500
    for piece in found:
        days = (piece.date_to - piece.date_from).days + 1
        assert len(piece.meter_ids) * days <= 1000
    # the last chunk holds 200 meters: 5 days a piece, 73 pieces for the year
    last = [piece for piece in found if piece.meter_ids[0] == 1001]
    assert len(last) == 73
    assert last[-1] == Piece(
        list(range(1001, 1201)), date(2026, 12, 27), date(2026, 12, 31)
    )


def test_many_meters_still_get_one_day_a_piece():
    found = list(pieces(range(500), date(2026, 1, 1), date(2026, 1, 3), meter_days=10))
    assert [(p.date_from.day, p.date_to.day) for p in found] == [(1, 1), (2, 2), (3, 3)]


def test_no_meters_or_a_reversed_range_is_no_piece():
    assert list(pieces([], date(2026, 1, 1), date(2026, 1, 2))) == []
    assert list(pieces([1], date(2026, 1, 2), date(2026, 1, 1))) == []


def test_an_empty_budget_is_refused():
    with pytest.raises(ValueError):
        list(pieces([1], date(2026, 1, 1), date(2026, 1, 2), meters=0))
