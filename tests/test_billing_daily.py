"""Daily use sums: one rule for the billing batch and the rebuild."""

from datetime import date, datetime
from decimal import Decimal as D

from prepaid_billing_tools.daily import Days, band_lines


def test_band_lines_reads_time_of_use_lines_only():
    detail = (
        "peak: 1.5 x 1.1 = 1.65\n"
        "valley (register difference): 0.02 x 0.35 = 0.0070\n"
        "tier 1: 2 x 0.5 = 1.0\n"
        "Meter balance 10.00 -> 9.00"
    )
    assert band_lines(detail) == [
        (1, D("1.5"), D("1.65")),
        (3, D("0.02"), D("0.0070")),
    ]
    assert band_lines(None) == []


def test_days_sum_readings_and_charges_per_meter_and_day():
    days = Days()
    day = date(2026, 3, 2)
    at = datetime(2026, 3, 2, 1)
    days.add(1, day, (at, 101.5, 0), 1.5, 0.0, D("1.65"), "peak: 1.5 x 1.1 = 1.65")
    days.add(1, day, (at, 103.5, 0), 2.0, 0.0, D("0.70"), "valley: 2 x 0.35 = 0.70")
    days.add(1, day, (at, 103.5, 0), 0.0, 0.0)
    days.add(1, date(2026, 3, 3), (at, 104.5, 0), 1.0, 0.0, D("0.80"), None)
    days.add(2, day, (at, 0, 7.5), 0.0, 0.5, D("2.00"), "single price: 0.5 x 4 = 2.0")
    uses = dict(days.items())
    first = uses[(1, day)]
    assert (first.kwh, first.charged) == (3.5, 2)
    assert first.amount == D("2.35")
    assert first.band_kwh == [0, D("1.5"), 0, D("2")]
    assert first.band_cost == [0, D("1.65"), 0, D("0.70")]
    flat = uses[(1, date(2026, 3, 3))]
    assert (flat.kwh, flat.amount, flat.band_kwh) == (1.0, D("0.80"), None)
    water = uses[(2, day)]
    assert (water.m3, water.amount, water.band_cost) == (0.5, D("2.00"), None)
    assert len(days) == 3


def test_a_day_keeps_its_earliest_and_latest_reading_whatever_the_order():
    days = Days()
    day = date(2026, 3, 2)
    late, early, noon = (datetime(2026, 3, 2, h) for h in (20, 1, 12))
    days.add(1, day, (noon, 110.0, 0), 1.0, 0.0)
    days.add(1, day, (late, 120.0, 0), 1.0, 0.0)
    days.add(1, day, (early, 100.0, 0), 1.0, 0.0)  # a manual reading, entered late
    days.add(1, day, (late, 121.0, 0), 1.0, 0.0)  # same time, higher id: the last
    ((_key, use),) = days.items()
    assert use.first == (early, 100.0, 0)
    assert use.last == (late, 121.0, 0)


def test_array_literals_round_trip_numbers_dates_and_nulls():
    from prepaid_billing_tools.sql_arrays import array_literal

    at = datetime(2026, 3, 2, 1, 30)
    assert array_literal([1, 2.5, D("0.0070"), None]) == "{1,2.5,0.0070,NULL}"
    assert array_literal([date(2026, 3, 2), at]) == "{2026-03-02,2026-03-02 01:30:00}"
    assert array_literal([]) == "{}"
    assert array_literal(['1}"\\', "NULL"]) == '{"1}\\"\\\\","NULL"}'
    try:
        array_literal([True])
    except TypeError:
        pass
    else:
        raise AssertionError("False is Odoo's empty value, not a boolean to send")


def test_a_billing_batch_sums_by_local_day_with_its_charges():
    from types import SimpleNamespace

    from prepaid_billing_tools import batch
    from prepaid_billing_tools.clock import LocalClock
    from prepaid_billing_tools.daily import add_billed

    def row(reading_id, hour, kwh, total, meter_id=7):
        at = datetime(2026, 3, 1, hour)  # UTC: 16:00 is midnight in Shanghai
        return (reading_id, meter_id, at, kwh, None, "none", *[None] * 5, total, None)

    rows = [row(1, 10, 1.0, 101), row(2, 15, 2.0, 103), row(3, 17, 0.5, 103.5)]
    rows.append(row(4, 18, 9.0, 112.5))  # after the watermark: not billed
    group = batch.Group(1, 7, 9, "kWh", 0)
    for reading_id, amount, detail in (
        (1, "0.80", batch.NULL),
        (3, "0.45", "peak: 0.5 x 0.9 = 0.45"),
    ):
        group.charges.append(batch.Charge(reading_id, D(1), D(amount), detail))
    meters = {7: SimpleNamespace(clock=LocalClock("Asia/Shanghai"), watermark=3)}
    group.lines[("peak", D("0.9"))] = [D("0.5"), D("0.45")]
    days = add_billed(rows, meters, [group]).days()
    uses = dict(days.items())
    march1, march2 = uses[(7, date(2026, 3, 1))], uses[(7, date(2026, 3, 2))]
    assert (march1.kwh, march1.amount, march1.charged) == (3.0, D("0.80"), 1)
    first, last = days.edges(march1)
    assert first[1:] == (101, None) and last[1:] == (103, None)
    assert (march2.kwh, march2.amount, march2.charged) == (0.5, D("0.45"), 1)
    assert march2.band_kwh[1] == D("0.5") and march2.band_cost[1] == D("0.45")
    first, last = days.edges(march2)
    assert first == last == (datetime(2026, 3, 1, 17), 103.5, None)


def _reference_days(rows, meters, groups):
    """What Days.add makes of the billed rows, reading by reading."""
    from prepaid_billing_tools.daily import Days

    charges = {c[0]: c for g in groups for c in g.charges}
    days = Days()
    for row in rows:
        meter = meters[row[1]]
        if row[0] > (meter.watermark or 0):
            continue
        day = meter.clock.local(row[2]).date()
        charge = charges.get(row[0])
        detail = charge and charge[3].replace("\\n", "\n")
        days.add(
            row[1],
            day,
            (row[2], row[11], row[12]),
            row[3],
            row[4],
            charge and charge[2],
            None if detail == "\\N" else detail,
        )
    return days


def _assert_same_days(got, want):
    assert sorted(dict(got.items())) == sorted(dict(want.items()))
    for key, use in want.items():
        mine = got.uses[key]
        assert (mine.kwh, mine.m3, mine.amount, mine.charged) == (
            use.kwh,
            use.m3,
            use.amount,
            use.charged,
        ), key
        assert (mine.band_kwh, mine.band_cost) == (use.band_kwh, use.band_cost)
        assert got.edges(mine) == want.edges(use), key


def test_a_billing_batch_sums_like_reading_by_reading_whatever_the_rows():
    """Random batches (time zones with and without daylight saving time,
    readings entered late out of time order, watermarks, time-of-use and
    single-price charges, readings without charge): the batch's day sums
    equal Days.add's."""
    import random
    from datetime import timedelta
    from types import SimpleNamespace

    from prepaid_billing_tools import batch
    from prepaid_billing_tools.clock import LocalClock
    from prepaid_billing_tools.daily import BatchDays, add_billed

    rng = random.Random(20261129)
    zones = ["Asia/Shanghai", "Europe/Berlin", "America/Santiago", "UTC"]
    for _round in range(30):
        rows, groups, meters, reading_id = [], [], {}, 0
        for meter_id in range(1, rng.randint(2, 8)):
            clock = LocalClock(rng.choice(zones))
            # around the autumn transitions of Berlin (Oct 25) and Santiago
            at = datetime(2026, rng.choice([4, 9, 10]), rng.randint(1, 28), 12)
            group = batch.Group(1, meter_id, 1, "kWh", 0)
            total, meter_rows = 100.0, []
            for _n in range(rng.randint(1, 60)):
                reading_id += 1
                at += timedelta(minutes=rng.choice([15, 60, 240, 600]))
                read_at = at
                if rng.random() < 0.05:  # entered late, hours before
                    read_at = at - timedelta(hours=rng.randint(1, 30))
                kwh = rng.choice([None, 0.0, round(rng.uniform(0.1, 3), 2)])
                total += kwh or 0.0
                water = rng.random() < 0.2
                row = (
                    reading_id,
                    meter_id,
                    read_at,
                    None if water else kwh,
                    kwh if water else 0.0,
                    "none",
                    *[None] * 5,
                    None if water else total,
                    total if water else None,
                )
                meter_rows.append(row)
                if kwh and rng.random() < 0.9:
                    amount = D(str(round(kwh * 0.8, 2)))
                    if rng.random() < 0.3:
                        band = rng.choice(["peak", "valley (register difference)"])
                        detail = f"{band}: {kwh} x 0.8 = {amount}"
                        group.lines[(band, D("0.8"))] = [D(0), D(0)]
                    else:
                        detail = batch.NULL
                    group.charges.append(
                        batch.Charge(reading_id, D(kwh), amount, detail)
                    )
            rows.extend(meter_rows)
            groups.append(group)
            watermark = meter_rows[rng.randint(0, len(meter_rows) - 1)][0]
            if rng.random() < 0.5:
                watermark = meter_rows[-1][0]
            meters[meter_id] = SimpleNamespace(clock=clock, watermark=watermark)
            # charges exist for billed readings only
            group.charges[:] = [c for c in group.charges if c[0] <= watermark]
        got = add_billed(rows, meters, groups).days()
        want = _reference_days(rows, meters, groups)
        _assert_same_days(got, want)
        # counted as pricing goes, in steps of any size: the same days
        counting = BatchDays(rows, meters, groups)
        priced = 0
        while priced < len(rows):
            priced = min(priced + rng.randint(1, 40), len(rows))
            counting.count(priced)
        _assert_same_days(counting.count().days(), want)


def test_plain_array_literals_equal_the_checked_ones():
    from prepaid_billing_tools.sql_arrays import array_literal, plain_array_literal

    at = datetime(2026, 3, 2, 1, 30)
    values = [1, 2.5, D("0.0070"), None, date(2026, 3, 2), at, at, None]
    assert plain_array_literal(values) == array_literal(values)
    assert plain_array_literal(values, repeated=True) == array_literal(values)
    assert plain_array_literal([]) == "{}"
