"""Aligning imported forecasts on the target's calendar: next_day/same_day, every rejection,
and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_madness.data.alignment import align_forecasts, no_information_forecast
from lstm_madness.data.forecasts import parse_forecasts
from lstm_madness.errors import ConfigError, ValidationError

# a target calendar with a holiday (2020-01-20) and a weekend in the middle
CALENDAR = pd.bdate_range("2020-01-02", "2020-01-31").drop(pd.Timestamp("2020-01-20"))


def _csv(rows: list[tuple[str, str, float]]) -> bytes:
    body = "".join(f"{d},{m},{p!r}\n" for d, m, p in rows)
    return ("date,model,prediction\n" + body).encode()


def _problems(data: bytes, **kw) -> list[str]:
    f = parse_forecasts(data, "f.csv")
    with pytest.raises(ValidationError) as info:
        align_forecasts(f.frame, CALENDAR, file="f.csv", target="XLF", **kw)
    return [str(p) for p in info.value.problems]


def test_next_day_keeps_the_dates_and_same_day_moves_them_back_one_trading_day() -> None:
    rng = np.random.default_rng(0)
    decision = CALENDAR[3:15]  # includes the day before the holiday and the weekend
    preds = {m: rng.normal(0, 0.01, len(decision)) for m in ("a", "b")}
    nxt = [
        (d.strftime("%Y-%m-%d"), m, float(preds[m][i]))
        for m in preds
        for i, d in enumerate(decision)
    ]
    following = CALENDAR[4:16]  # the date of the return each prediction is for
    same = [
        (d.strftime("%Y-%m-%d"), m, float(preds[m][i]))
        for m in preds
        for i, d in enumerate(following)
    ]
    a = align_forecasts(parse_forecasts(_csv(nxt), "n.csv").frame, CALENDAR)
    b = align_forecasts(parse_forecasts(_csv(same), "s.csv").frame, CALENDAR, alignment="same_day")
    assert (a.alignment, b.alignment) == ("next_day", "same_day")
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.frame.loc[a.frame["model"] == "a", "date"].tolist() == list(decision)
    # the prediction stamped 2020-01-21 (after the holiday) is decided on 2020-01-17
    stamped = b.frame.set_index(["model", "date"]).loc[("a", pd.Timestamp("2020-01-17"))]
    assert stamped["prediction"] == preds["a"][list(decision).index(pd.Timestamp("2020-01-17"))]
    assert not a.frame["gap"].any() and a.n_gaps == 0


def test_outcome_not_stored_yet_for_the_last_price_and_after() -> None:
    data = _csv(
        [
            ("2020-01-29", "a", 0.1),
            ("2020-01-30", "a", 0.1),
            ("2020-01-31", "a", 0.1),
            ("2020-02-03", "a", 0.1),
        ]
    )
    problems = _problems(data)
    assert len(problems) == 2
    assert "line 4, column date, value '2020-01-31': its outcome is not stored yet" in problems[0]
    assert "after 2020-01-31, the last stored one" in problems[0]
    assert "line 5" in problems[1]
    # the same dates read as same_day: only the one after the last price lacks its outcome
    (only,) = _problems(data, alignment="same_day")
    assert "line 5, column date, value '2020-02-03': its outcome is not stored yet" in only
    # an explicit last price earlier than the calendar's end
    early = _problems(
        _csv([("2020-01-28", "a", 0.1), ("2020-01-29", "a", 0.1)]), last_price="2020-01-29"
    )
    assert len(early) == 1 and "value '2020-01-29'" in early[0]


def test_dates_that_are_not_trading_days_are_listed() -> None:
    data = _csv(
        [
            ("2019-12-31", "a", 0.1),
            ("2020-01-02", "a", 0.1),
            ("2020-01-03", "a", 0.1),
            ("2020-01-04", "a", 0.1),
            ("2020-01-06", "a", 0.1),
            ("2020-01-20", "a", 0.1),
        ]
    )
    problems = _problems(data, allow_gaps=True)
    assert len(problems) == 3
    assert "value '2019-12-31': before the first stored price of XLF (2020-01-02)" in problems[0]
    assert "value '2020-01-04': not a trading day of XLF" in problems[1]
    assert "value '2020-01-20': not a trading day of XLF" in problems[2]
    (first,) = _problems(
        _csv([("2020-01-02", "a", 0.1), ("2020-01-03", "a", 0.1)]), alignment="same_day"
    )
    assert "value '2020-01-02': the return ending on the first stored day" in first


def test_missing_trading_days_are_refused_unless_gaps_are_allowed() -> None:
    days = [d.strftime("%Y-%m-%d") for d in CALENDAR[:12]]
    kept = [d for i, d in enumerate(days) if i not in (3, 4, 9)]
    data = _csv([(d, "a", 0.01) for d in kept] + [(d, "b", 0.02) for d in days])
    (problem,) = _problems(data)
    assert (
        "model 'a' (from line 2): 3 trading day(s) of XLF missing inside the file's range"
        in problem
    )
    assert f"{days[3]}, {days[4]}, {days[9]}" in problem and "--allow-gaps" in problem
    f = parse_forecasts(data, "f.csv")
    aligned = align_forecasts(f.frame, CALENDAR, allow_gaps=True)
    a = aligned.frame.loc[aligned.frame["model"] == "a"]
    assert len(a) == 12 and a["gap"].sum() == 3 and aligned.n_gaps == 3
    assert a["prediction"].isna().tolist() == a["gap"].tolist()
    assert a["line"].isna().tolist() == a["gap"].tolist()
    filled = aligned.predictions("a", "return")
    assert (filled[a["gap"].to_numpy()] == 0.0).all()
    assert filled.index.equals(pd.DatetimeIndex(CALENDAR[:12]))
    direction = aligned.filled("direction")
    assert (direction.loc[direction["gap"], "prediction"] == 0.5).all()
    # gaps are per model: b is complete
    assert not aligned.frame.loc[aligned.frame["model"] == "b", "gap"].any()


def test_same_day_gaps_name_the_file_dates() -> None:
    days = [d.strftime("%Y-%m-%d") for d in CALENDAR[1:8]]
    (problem,) = _problems(
        _csv([(d, "a", 0.01) for i, d in enumerate(days) if i != 2]), alignment="same_day"
    )
    assert f"missing inside the file's range: {days[2]} " in problem


def test_every_problem_of_every_rule_comes_together() -> None:
    data = _csv(
        [
            ("2020-01-04", "a", 0.1),
            ("2020-01-06", "a", 0.1),
            ("2020-01-08", "a", 0.1),
            ("2020-01-31", "b", 0.1),
        ]
    )
    problems = _problems(data)
    assert len(problems) == 3  # weekend day, the gap of a, b's missing outcome


def test_no_information_forecast_and_bad_settings() -> None:
    assert no_information_forecast("return") == 0.0
    assert no_information_forecast("direction") == 0.5
    f = parse_forecasts(_csv([("2020-01-06", "a", 0.1)]), "f.csv")
    with pytest.raises(ConfigError, match="next_day, same_day"):
        align_forecasts(f.frame, CALENDAR, alignment="previous_day")
    with pytest.raises(ConfigError):
        no_information_forecast("regression")
