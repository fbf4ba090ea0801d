"""The counter rule of a counted record (plain Python, no Odoo)."""

import pytest
from prepaid_metering_tools.counted_record import (
    Decision,
    Verdict,
    after_write,
    before_write,
    expected_after,
)


def test_the_expected_counter_is_the_counter_before_plus_one():
    assert expected_after(7) == 8
    assert expected_after(7.0) == 8


def test_counter_at_expected_before_writing_is_already_applied():
    decision = before_write(8, expected=8)
    assert decision == Decision(Verdict.ALREADY_APPLIED, 8, 8)
    assert decision.verdict.done
    assert not decision.verdict.final


def test_counter_one_below_expected_before_writing_means_write():
    decision = before_write(7, expected=8)
    assert decision.verdict is Verdict.WRITE
    assert not decision.verdict.done
    assert not decision.verdict.final


@pytest.mark.parametrize("counter", [0, 6, 9, 12])
def test_counter_far_from_expected_before_writing_needs_an_operator(counter):
    decision = before_write(counter, expected=8)
    assert decision == Decision(Verdict.CONFLICT, counter, 8)
    assert decision.verdict.final
    assert not decision.verdict.done


def test_write_that_moved_the_counter_by_one_is_applied():
    decision = after_write(8, expected=8)
    assert decision.verdict is Verdict.APPLIED
    assert decision.verdict.done


def test_write_that_moved_the_counter_by_two_needs_an_operator():
    decision = after_write(9, expected=8)
    assert decision == Decision(Verdict.CONFLICT, 9, 8)
    assert decision.verdict.final
    assert not decision.verdict.done


def test_counter_that_went_back_after_writing_needs_an_operator():
    assert after_write(3, expected=8).verdict is Verdict.CONFLICT


def test_write_that_did_not_move_the_counter_is_tried_again():
    decision = after_write(7, expected=8)
    assert decision.verdict is Verdict.NOT_APPLIED
    assert not decision.verdict.done
    assert not decision.verdict.final


@pytest.mark.parametrize("code", [0x01, 0x02, 0x03])
def test_record_refused_by_the_meter_fails_for_good(code):
    decision = after_write(7, expected=8, exception_code=code)
    assert decision.verdict is Verdict.REFUSED
    assert decision.verdict.final
    assert not decision.verdict.done


@pytest.mark.parametrize("code", [0x04, 0x06])
def test_a_busy_or_failing_device_is_tried_again(code):
    assert after_write(7, expected=8, exception_code=code).verdict is (
        Verdict.NOT_APPLIED
    )


def test_a_refusal_does_not_hide_a_record_that_was_applied():
    # The reply said no, the counter says yes: the counter decides.
    assert after_write(8, expected=8, exception_code=0x03).verdict is (Verdict.APPLIED)
