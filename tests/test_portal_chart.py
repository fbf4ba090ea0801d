"""The portal's bar chart numbers: round value axes, bar heights, labels."""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "addons/prepaid_wechat/tools/chart.py"
_spec = importlib.util.spec_from_file_location("prepaid_wechat_tools_chart", _path)
chart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chart)


def test_the_value_axis_ends_on_the_lowest_round_top():
    assert chart.axis([4.5]) == (5.0, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert chart.axis([12.7, 3.0]) == (15.0, [0.0, 5.0, 10.0, 15.0])
    assert chart.axis([180.0])[0] == 200.0
    assert chart.axis([0.03])[0] == 0.03


def test_an_empty_series_still_has_an_axis():
    assert chart.axis([0.0, 0.0]) == (1.0, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert chart.axis([]) == (1.0, [0.0, 0.25, 0.5, 0.75, 1.0])


def test_bars_in_percent_of_the_top_and_the_latest_label_shown():
    drawn = chart.bars([f"d{i}" for i in range(10)], [0.0] * 9 + [4.5], 7)
    assert drawn["ticks"] == ["0", "1", "2", "3", "4", "5"]
    assert drawn["points"][-1]["percent"] == 90.0
    shown = [p["label"] for p in drawn["points"] if p["show_label"]]
    assert shown == ["d2", "d9"]


def test_tick_texts_carry_the_decimals_of_their_step():
    assert chart.bars(["a"], [2.4])["ticks"] == [
        "0.0",
        "0.5",
        "1.0",
        "1.5",
        "2.0",
        "2.5",
    ]
    assert chart.bars(["a"], [0.0])["ticks"][1] == "0.25"
