"""Balance decisions of a billing batch (tools/balance.decide) against the
one-account rules, and the batch size of a billing run (tools/batch)."""

import itertools
import random
from decimal import Decimal as D

import pytest
from prepaid_billing_tools.balance import (
    CUT_STATES,
    AccountRow,
    alarm_level,
    compare,
    decide,
    restores_with,
)
from prepaid_billing_tools.batch import STEADY_READINGS_PER_METER, next_batch_size


def expected(row):
    """What decide must say for ``row``, from the one-account rules."""
    level = alarm_level(row.balance, (row.alarm1, row.alarm2, row.alarm3), row.rounding)
    emergency = D(str(row.emergency or 0))
    credit = D(str(row.credit_limit)) + emergency
    exhausted = compare(row.balance, -credit, row.rounding) <= 0
    in_use = repaid = False
    if emergency > 0:
        below = compare(row.balance, 0, row.rounding) < 0
        in_use = below and not row.emergency_used
        repaid = not below and row.emergency_used
    cut = exhausted and row.supply_state == "on"
    restore = (
        not cut
        and row.supply_state in CUT_STATES
        and not row.limit_cut
        and restores_with(
            row.balance,
            0 if row.emergency_used else emergency,
            row.credit_limit,
            row.rounding,
        )
    )
    return level, cut, restore, in_use, repaid


def random_rows(count, seed):
    rng = random.Random(seed)
    rows = []
    for account_id in range(1, count + 1):
        rounding = rng.choice(["0.01", "0.05", "1"])
        # near the thresholds and zero, where rounding decides
        anchor = rng.choice(["50", "20", "5", "0", "-10", "-30"])
        balance = str(D(anchor) + D(rng.randint(-300, 300)) / 100)
        rows.append(
            AccountRow(
                account_id,
                rng.choice([balance, D(balance), float(balance)]),
                rng.randint(0, 3),
                rng.choice(["0", "10", "0.00"]),
                rng.choice(["on", "cut_off", "cut_pending", "cut_failed", "off"]),
                "50",
                "20",
                rng.choice(["5", "5.004", "4.996"]),
                rounding,
                rng.choice([0, "0", "20", "15.5"]),
                rng.random() < 0.5,
                rng.random() < 0.2,
            )
        )
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_decide_matches_the_rules_of_one_account(seed):
    rows = random_rows(2000, seed)
    decided = decide(rows)
    raised = dict(decided.raise_events)
    resets = dict(decided.resets)
    by_level = {i: level for level, ids in decided.by_level.items() for i in ids}
    for row in rows:
        level, cut, restore, in_use, repaid = expected(row)
        assert by_level.get(row.id, row.alarm_level) == level, row
        if level > row.alarm_level:
            assert raised[row.id] == f"alarm{level}", row
        else:
            assert row.id not in raised, row
        if level < row.alarm_level:
            assert resets[row.id] == level, row
        else:
            assert row.id not in resets, row
        assert (row.id in decided.to_cut) == cut, row
        assert (row.id in decided.to_restore) == restore, row
        assert (row.id in decided.emergency_in_use) == in_use, row
        assert (row.id in decided.emergency_repaid) == repaid, row


def test_decide_on_rounding_edges():
    # 5.004 rounds to the alarm 3 threshold at a cent; 0.004 is zero: cut
    rows = [
        AccountRow(1, "5.004", 0, "0", "on", "50", "20", "5", "0.01"),
        AccountRow(2, "0.004", 3, "0", "on", "50", "20", "5", "0.01"),
        AccountRow(3, "0.006", 3, "0", "cut_off", "50", "20", "5", "0.01"),
        AccountRow(4, "-12", 3, "0", "cut_off", "50", "20", "5", "0.01", "15"),
        AccountRow(5, "-12", 3, "0", "cut_off", "50", "20", "5", "0.01", "15", True),
    ]
    decided = decide(rows)
    assert decided.raise_events == [(1, "alarm3")]
    assert decided.to_cut == [2]
    # above zero; above the emergency credit not used yet; used up: not
    assert decided.to_restore == [3, 4]
    assert decided.emergency_in_use == [4]


def test_next_batch_size_grows_once_billing_keeps_up():
    per = STEADY_READINGS_PER_METER
    # a backlog: the configured batch
    assert next_batch_size(1000, 10000, 1000, 100 * 1000, True) == 1000
    # every reading taken, one or two a meter: steady batches
    for charged in (0, 1000, per * 1000):
        assert next_batch_size(1000, 10000, 1000, charged, True) == 10000
    # the reading limit stopped the batch: still a backlog
    assert next_batch_size(1000, 10000, 1000, 1000, False) == 1000
    assert next_batch_size(1000, 10000, 0, 0, True) == 1000
    for batch, meters in itertools.product((1, 500), (1, 7)):
        assert next_batch_size(batch, 2000, meters, meters, True) == 2000
