"""Intervals over students (labelworth/intervals.py): the t table is the t distribution's, intervals
hold their mean, and paired differences behave as differences."""

from __future__ import annotations

import math

import pytest

from labelworth.intervals import T_975, half_width, mean_interval, paired_difference, t_quantile_975


def t_cdf(x: float, df: int, steps: int = 20000) -> float:
    """P(T <= x) for x >= 0 by Simpson's rule on the density from 0 to x, plus one half."""
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(t: float) -> float:
        return math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))

    h = x / steps
    total = density(0) + density(x) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 31, 60, 200])
def test_the_quantile_leaves_two_and_a_half_percent_above_it(df):
    assert t_cdf(t_quantile_975(df), df) == pytest.approx(0.975, abs=2e-5 if df in T_975 else 1e-4)


def test_an_interval_holds_its_mean_and_one_student_has_none():
    interval = mean_interval([70.0, 72.0, 74.0])
    assert interval["mean"] == 72.0 and interval["std"] == 2.0 and interval["n"] == 3
    assert interval["high"] - 72.0 == pytest.approx(72.0 - interval["low"]) == pytest.approx(4.303 * 2 / math.sqrt(3))
    assert mean_interval([61.5]) == {"mean": 61.5, "std": None, "low": None, "high": None, "n": 1}
    assert half_width(interval) == pytest.approx(4.303 * 2 / math.sqrt(3)) and half_width(mean_interval([61.5])) == 0.0
    with pytest.raises(ValueError):
        mean_interval([])


def test_a_paired_difference_is_over_common_seeds_and_moves_with_a_constant():
    first, second = {0: 70.0, 1: 73.0, 2: 71.0}, {0: 68.0, 1: 72.0, 2: 68.5, 3: 90.0}
    difference = paired_difference(first, second)
    assert difference["seeds"] == [0, 1, 2] and difference["mean"] == pytest.approx(1.8333333)
    shifted = paired_difference({seed: value + 5 for seed, value in first.items()}, second)
    assert shifted["mean"] == pytest.approx(difference["mean"] + 5)
    assert shifted["high"] - shifted["low"] == pytest.approx(difference["high"] - difference["low"])
    assert shifted["excludes_zero"] and not paired_difference(first, first)["excludes_zero"]
    assert paired_difference({0: 70.0}, {0: 69.0})["excludes_zero"] is None  # one student: no interval
    with pytest.raises(ValueError, match="share no student seed"):
        paired_difference({0: 1.0}, {1: 1.0})
