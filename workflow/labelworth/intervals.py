"""How sure a mean over students is: the 95% t-interval of a mean, and the paired difference of two
populations trained with the same student seeds (the same initialisation and batches, so a seed's
two accuracies differ only by what the two label or image sets change).

Plain Python: the tables and the summaries that use it import no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

# Student's t, 97.5% quantile (a two-sided 95% interval), by degrees of freedom: the standard values,
# rounded to three decimals; tests hold each against the t distribution's integral.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
         19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052,
         28: 2.048, 29: 2.045, 30: 2.042}
Z_975 = 1.959964


def t_quantile_975(degrees_of_freedom: int) -> float:
    """The 97.5% quantile of Student's t: the table up to 30 degrees of freedom, above it the
    Cornish-Fisher expansion around the normal quantile (within 0.001 there)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {degrees_of_freedom}")
    if degrees_of_freedom in T_975:
        return T_975[degrees_of_freedom]
    z, n = Z_975, degrees_of_freedom
    return z + (z ** 3 + z) / (4 * n) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * n ** 2)


def mean_interval(values: Sequence[float]) -> dict:
    """{'mean', 'std' (sample), 'low', 'high', 'n'}: the 95% t-interval of the mean; with one value
    its std and interval are None (not zero: one student says nothing about the spread).

    Property (tests): the interval holds the mean, and is symmetric about it."""
    values = [float(value) for value in values]
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "std": None, "low": None, "high": None, "n": 1}
    std = statistics.stdev(values)
    half = t_quantile_975(len(values) - 1) * std / math.sqrt(len(values))
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": len(values)}


def half_width(interval: Mapping) -> float:
    """The half-width of a `mean_interval` (or `paired_difference`): the error bar a figure draws;
    0 for one value, which has no interval."""
    return 0.0 if interval["low"] is None else (interval["high"] - interval["low"]) / 2


def paired_difference(first: Mapping[int, float], second: Mapping[int, float]) -> dict:
    """first - second over the seeds both have: mean_interval of the per-seed differences, and
    'excludes_zero' (None when there is no interval). Seeds only one side has are left out.

    Property (tests): equal populations give a zero difference; adding a constant to every seed of
    `first` moves the difference by it and never widens the interval."""
    seeds = sorted(set(first) & set(second))
    if not seeds:
        raise ValueError("the two populations share no student seed")
    interval = mean_interval([first[seed] - second[seed] for seed in seeds])
    excludes = None if interval["low"] is None else (interval["low"] > 0 or interval["high"] < 0)
    return {**interval, "excludes_zero": excludes, "seeds": seeds}
