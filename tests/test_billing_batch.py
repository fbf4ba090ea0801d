"""Billing batch core: charges grouped into wallet lines, COPY text, clock."""

import io
import random
from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest
import pytz
from prepaid_billing_tools.batch import (
    COPY_COLUMNS,
    ChargeBatch,
    CopyStream,
    Where,
    copy_escape,
)
from prepaid_billing_tools.clock import LocalClock

LINE = ("single price", D("1.5"), D("0.8"), D("1.20"))


def test_charges_of_a_meter_and_month_share_one_group():
    batch = ChargeBatch()
    at = datetime(2026, 3, 2, 2)
    batch.add(
        Where(1, 10, 7, "kWh", date(2026, 3, 2), 100, at), D("1.5"), D("1.20"), [LINE]
    )
    batch.add(
        Where(1, 10, 7, "kWh", date(2026, 3, 2), 101, at), D("1.5"), D("1.20"), [LINE]
    )
    batch.add(Where(1, 11, 7, "kWh", date(2026, 3, 2), 102, at), D("2"), D("1.60"))
    batch.add(Where(1, 10, 7, "kWh", date(2026, 4, 1), 103, at), D("1"), D("0.80"))
    batch.add(Where(1, 10, 8, "kWh", date(2026, 4, 1), 104, at), D("1"), D("0.90"))
    first, other_meter, next_month, next_version = batch.groups
    assert (first.count, first.quantity, first.amount) == (2, D("3.0"), D("2.40"))
    assert (first.first_reading_id, first.last_reading_id) == (100, 101)
    assert first.summary() == [["single price", "3.0", "0.8", "2.40"]]
    assert other_meter.meter_id == 11
    assert next_month.period == date(2026, 4, 1)
    assert next_version.version_key == 8
    assert len(batch) == 5


def test_copy_text_rows_name_the_wallet_line_or_null():
    batch = ChargeBatch([55])
    at = datetime(2026, 3, 2, 2, 0)
    batch.add(
        Where(1, 10, 7, "kWh", date(2026, 3, 2), 100, at), D("1.5"), D("1.20"), [LINE]
    )
    batch.add(Where(2, 11, 7, "kWh", date(2026, 3, 2), 101, at), D("0.01"), D("0"))
    rows = batch.copy_text().splitlines()
    assert rows[0].split("\t") == [
        "100",
        "55",
        "10",
        "1.5",
        "1.20",
        "single price: 1.5 x 0.8 = 1.20",
    ]
    assert rows[1].split("\t")[1] == "\\N"
    assert rows[1].split("\t")[5] == "\\N", "no detail is NULL"


def test_single_price_charges_sum_like_the_general_path():
    fast, general = ChargeBatch(), ChargeBatch()
    at = datetime(2026, 3, 2, 2)
    for reading_id, (quantity, price) in enumerate(
        [(D("1.5"), D("0.8")), (D("2.25"), D("0.8")), (D("1"), D("1.1"))], 100
    ):
        label = "single price" if price == D("0.8") else "peak"
        exact = quantity * price
        amount = exact.quantize(D("0.01"))
        where = Where(1, 10, 7, "kWh", 1, reading_id, at)
        fast.add_single(where, quantity, amount, label, price, exact)
        general.add(where, quantity, amount, [(label, quantity, price, exact)])
    (group,), (expected,) = fast.groups, general.groups
    assert (
        group.summary()
        == expected.summary()
        == [
            ["single price", "3.75", "0.8", "3.000"],
            ["peak", "1", "1.1", "1.1"],
        ]
    )
    assert (group.amount, group.quantity) == (expected.amount, expected.quantity)
    details = [charge.detail for charge in group.charges]
    assert details == ["\\N", "\\N", "peak: 1 x 1.1 = 1.1"]


def test_copy_escape_keeps_tabs_and_newlines_inside_the_field():
    assert copy_escape("a\tb\nc\\d") == "a\\tb\\nc\\\\d"
    assert copy_escape(None) == "\\N"


def test_copy_text_loads_into_postgresql_as_written(cr):
    batch = ChargeBatch([9, 10])
    at = datetime(2026, 3, 2, 2, 0, 30, 250000)
    two = [("peak", D("1"), D("1.1"), D("1.1")), ("valley", D("2"), D("0.4"), D("0.8"))]
    batch.add(Where(1, 10, 7, "kWh", date(2026, 3, 2), 100, at), D("3"), D("1.90"), two)
    batch.add(
        Where(1, 10, None, "kWh", date(2026, 3, 2), 101, at), D("1"), D("1"), (), "a\tb"
    )
    cr.execute(
        """CREATE TEMP TABLE c (id int4 PRIMARY KEY, ledger_line_id int4,
           meter_id int4, quantity numeric, amount numeric, detail text)"""
    )
    cr.copy_expert(
        f"COPY c ({', '.join(COPY_COLUMNS)}) FROM STDIN",
        io.StringIO(batch.copy_text()),
    )
    # numeric as text: Odoo (imported by pytest-odoo when installed)
    # registers a float typecaster for numeric on every connection.
    cr.execute("SELECT id, ledger_line_id, quantity::text, amount::text, detail FROM c")
    got = cr.fetchall()
    assert got[0] == (
        100,
        9,
        "3",
        "1.90",
        "peak: 1 x 1.1 = 1.1\nvalley: 2 x 0.4 = 0.8",
    )
    assert got[1][4] == "a\tb"


@pytest.mark.parametrize(
    "tzname", ["Asia/Shanghai", "UTC", "Europe/Paris", "America/New_York", "Etc/GMT-8"]
)
def test_local_clock_agrees_with_pytz(tzname):
    clock = LocalClock(tzname)
    zone = pytz.timezone(tzname)
    rng = random.Random(tzname)
    start = datetime(1985, 1, 1)
    moments = sorted(
        start + timedelta(seconds=rng.randrange(0, 45 * 365 * 86400))
        for _i in range(3000)
    )
    # also around this zone's transitions, in both directions of time
    transitions = getattr(zone, "_utc_transition_times", [])
    for transition in [t for t in transitions if t.year > 1900][-60:]:
        moments += [transition - timedelta(seconds=1), transition]
    rng.shuffle(moments[len(moments) // 2 :])
    for moment in moments:
        expected = pytz.utc.localize(moment).astimezone(zone).replace(tzinfo=None)
        assert clock.local(moment) == expected, moment


def _charge(batch, meter_id, reading_id, amount, period=1):
    where = Where(1, meter_id, 7, "kWh", period, reading_id, datetime(2026, 3, 2))
    batch.add_single(where, D(1), D(amount), "single price", D(amount), D(amount))


def test_groups_take_reserved_ids_as_they_close_and_wait_when_none_is_left():
    batch = ChargeBatch([501, 502])
    _charge(batch, 10, 1, "0.80")
    _charge(batch, 10, 2, "0.80")
    assert batch.take_ready() == "", "meter 10 may still have readings"
    _charge(batch, 11, 3, "0")  # less than a cent: no wallet line, no id
    first = batch.take_ready()
    assert [row.split("\t")[:2] for row in first.splitlines()] == [
        ["1", "501"],
        ["2", "501"],
    ]
    _charge(batch, 12, 4, "0.50")
    _charge(batch, 12, 5, "0.50", period=2)  # a new month: a second group
    _charge(batch, 13, 6, "0.70")
    batch.close()
    ready = batch.take_ready()
    assert [row.split("\t")[:2] for row in ready.splitlines()] == [
        ["3", "\\N"],
        ["4", "502"],
    ]
    assert [g.meter_id for g in batch.waiting] == [12, 13]
    with pytest.raises(ValueError):
        batch.assign([600])
    rest = batch.assign([600, 601])
    assert [row.split("\t")[:2] for row in rest.splitlines()] == [
        ["5", "600"],
        ["6", "601"],
    ]
    assert [g.line_id for g in batch.groups] == [501, None, 502, 600, 601]
    assert len(batch) == 6


def test_copy_stream_prices_as_postgresql_reads():
    batch = ChargeBatch(list(range(1000, 1100)))
    steps = []

    def pump():
        for meter_id in range(50):
            _charge(batch, meter_id, meter_id, "1.00")
            steps.append(meter_id)
            yield

    stream = CopyStream(batch, pump(), chunk=64)
    first = stream.read(8)
    assert first and len(steps) < 50, "only what the first chunk needs"
    rest = []
    while chunk := stream.read(8):
        rest.append(chunk)
    rows = (first + "".join(rest)).splitlines()
    assert len(rows) == 50 and len(steps) == 50
    assert rows[-1].split("\t")[:2] == ["49", "1049"]
    assert stream.error is None


def test_copy_stream_keeps_what_the_pump_raised():
    batch = ChargeBatch([1])

    def pump():
        _charge(batch, 1, 1, "1.00")
        yield
        raise ArithmeticError("bad tariff")

    stream = CopyStream(batch, pump())
    assert stream.read(8) == ""
    assert isinstance(stream.error, ArithmeticError)
