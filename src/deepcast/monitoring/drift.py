"""Drift detectors for a served model: CUSUM on its one-step errors, PSI on its inputs.

`ErrorDrift` standardises the matured one-step errors (actual - forecast) by the reference's
robust centre and scale, and runs three CUSUMs: the errors' mean going up, going down, and
their size (sqrt of the clipped |z|) going up; each increment is divided by the reference's
memory factor (errors keep some autocorrelation, see reference.ErrorBaseline). Errors are
what seasonality does not fool: a good model forecasts the season, so its errors are not
seasonal, and a slow trend the model follows is not drift either.

`InputDrift` compares the newest `window` rows of each input column (a whole number of the
longest seasonal period, so every phase counts equally) with the training rows'
distribution, by the population stability index over the training deciles. The target is
left out by default: a trend moves it out of the training range while the model, reading its
recent past, follows it (the bundled synthetic's +0.0005 a row is 0.3 sd in 2000 rows); the
error detector says whether the model still follows. `target=True` adds it.

Both are pure functions of the whole series given. After an alarm at index i nothing alarms
before i + cooldown, and the statistics restart against the new regime: rows i+1 ..
i+cooldown become the baseline (the errors' centre and scale, the inputs' proportions), so
one lasting shift is one alarm, and a second shift later is another.

Defaults were calibrated by benchmarks/drift.py on synthetic streams of 2,000 steps (seeds
kept apart from the scored ones; see benchmarks/results/drift.md): error threshold 16 with
slack 0.5, in long-run sds (4% of stable streams crossed, every planted shift found, median
delay 14 steps for a level shift and 43 for a changed driver); PSI threshold 0.3 (no
stable stream crossed; 0.2 let 6% through).

>>> import deepcast as dc, numpy as np
>>> df = dc.datasets.synthetic(n_steps=2000, seed=0)[["y", "x1", "x2"]]
>>> rng = np.random.default_rng(0)
>>> ref = DriftReference.build(df.iloc[:1000], rng.normal(size=500), period=168)
>>> errors = np.r_[rng.normal(size=600), rng.normal(2.0, 1.0, size=400)]  # shift at 600
>>> [(a.index, a.detail["direction"]) for a in ErrorDrift(ref).scan(errors)]
[(605, 'up')]
>>> InputDrift(ref).scan(df.iloc[1000:])       # the inputs, oldest row first
[]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import pandas as pd

from deepcast import _params
from deepcast.errors import DataError
from deepcast.monitoring.reference import MIN_ERRORS, DriftReference, ErrorBaseline
from deepcast.monitoring.statistics import bin_index, cusum, proportions, psi, rolling_counts

ERROR_THRESHOLD = 16.0
ERROR_SLACK = 0.5
PSI_THRESHOLD = 0.3

_RULES = {
    "threshold": _params.positive_float(),
    "slack": _params.Rule(Real, lambda v: v >= 0, "a non-negative number"),
    "cooldown": _params.positive_int("a positive integer or None"),
}


@dataclass(frozen=True)
class Alarm:
    """One drift alarm: where it fired in the scanned series, by which detector, and the
    statistic that crossed the threshold."""

    index: int
    detector: str
    statistic: float
    threshold: float
    detail: dict = field(default_factory=dict)


class ErrorDrift:
    """CUSUMs on standardised one-step errors (see the module doc).

    `threshold`: the CUSUM level that alarms (h, in long-run reference sds); `slack`: the
    change per row the CUSUM ignores (k; 0.5 is tuned to a 1-sd change of the errors'
    mean); `cooldown`: rows after an alarm without one (None: the reference's window).

    >>> alarms = ErrorDrift(ref, threshold=16, cooldown=336).scan(live_errors)  # oldest first
    """

    def __init__(
        self,
        reference: DriftReference,
        threshold: float = ERROR_THRESHOLD,
        slack: float = ERROR_SLACK,
        cooldown: int | None = None,
    ):
        _params.check(
            "ErrorDrift",
            {"threshold": threshold, "slack": slack, "cooldown": cooldown},
            _RULES,
        )
        self.reference = reference
        self.threshold = float(threshold)
        self.slack = float(slack)
        self.cooldown = int(cooldown or reference.window)

    def statistics(self, errors: np.ndarray, baseline: ErrorBaseline | None = None) -> dict:
        """The three CUSUM paths ("up", "down", "spread") over `errors`, without alarms."""
        level, spread = (baseline or self.reference.errors).standardise(errors)
        return {
            "up": cusum(level, self.slack),
            "down": cusum(-level, self.slack),
            "spread": cusum(spread, self.slack),
        }

    def scan(self, errors: np.ndarray) -> list[Alarm]:
        errors = _series(errors, "errors")
        alarms: list[Alarm] = []
        baseline, start = self.reference.errors, 0
        while start < len(errors):
            paths = self.statistics(errors[start:], baseline)
            stacked = np.stack(list(paths.values()))  # [3, rows]
            over = np.flatnonzero((stacked > self.threshold).any(axis=0))
            if not len(over):
                break
            j = int(over[0])
            which = int(np.argmax(stacked[:, j]))
            i = start + j
            alarms.append(
                Alarm(
                    i,
                    "errors",
                    float(stacked[which, j]),
                    self.threshold,
                    {"direction": list(paths)[which]},
                )
            )
            # The new regime's first rows are its baseline (needs enough of them).
            segment = errors[i + 1 : i + 1 + self.cooldown]
            if i + 1 + self.cooldown >= len(errors) or np.isfinite(segment).sum() < MIN_ERRORS:
                break
            baseline, start = ErrorBaseline.of(segment), i + 1 + self.cooldown
        return alarms


class InputDrift:
    """PSI of each input column's newest `window` rows against the training rows (see the
    module doc).

    `threshold`: the PSI that alarms; `window`: rows compared at a time (None: the
    reference's, a whole number of seasonal periods); `cooldown`: rows after an alarm without
    one (None: the window); `target`: also watch the target column.

    >>> InputDrift(ref).scan(frame)   # frame: the reference's columns, one row per step
    """

    def __init__(
        self,
        reference: DriftReference,
        threshold: float = PSI_THRESHOLD,
        window: int | None = None,
        cooldown: int | None = None,
        target: bool = False,
    ):
        _params.check(
            "InputDrift",
            {"threshold": threshold, "cooldown": cooldown, "window": window},
            {
                "threshold": _RULES["threshold"],
                "cooldown": _RULES["cooldown"],
                "window": _RULES["cooldown"],
            },
        )
        self.reference = reference
        self.threshold = float(threshold)
        self.window = int(window or reference.window)
        self.cooldown = int(cooldown or self.window)
        self.columns = reference.columns if target else reference.columns[1:]

    def statistics(self, frame: pd.DataFrame) -> pd.DataFrame:
        """PSI of every column at every row whose window the frame holds (NaN before), against
        the training rows, without alarms: one column per input column."""
        bins = self._bins(frame)
        out = {}
        for column in self.columns:
            expected = np.asarray(self.reference.bins[column].expected)
            counts = rolling_counts(bins[column], len(expected), self.window)
            out[column] = np.r_[np.full(self.window - 1, np.nan), psi(counts, expected)]
        return pd.DataFrame(out, index=frame.index)

    def scan(self, frame: pd.DataFrame) -> list[Alarm]:
        bins = self._bins(frame)
        if not self.columns or len(frame) < self.window:
            return []
        expected = {c: np.asarray(self.reference.bins[c].expected) for c in self.columns}
        alarms: list[Alarm] = []
        first = self.window - 1  # the first row whose window the frame holds
        while first < len(frame):
            values = np.stack(
                [
                    psi(rolling_counts(bins[c][first - self.window + 1 :], len(q), self.window), q)
                    for c, q in expected.items()
                ]
            )  # [columns, rows from `first` on]
            over = np.flatnonzero((values > self.threshold).any(axis=0))
            if not len(over):
                break
            j = int(over[0])
            which = int(np.argmax(values[:, j]))
            i, column = first + j, self.columns[which]
            detail = {"column": column, "psi": float(values[which, j]), "window": self.window}
            alarms.append(Alarm(i, "inputs", float(values[which, j]), self.threshold, detail))
            if i + self.cooldown >= len(frame):
                break
            # The rows after the alarm are the new regime's reference.
            after = slice(i + 1, i + 1 + self.cooldown)
            expected = {
                c: proportions(np.bincount(b[after][b[after] >= 0], minlength=len(expected[c])))
                for c, b in bins.items()
            }
            first = i + self.cooldown
        return alarms

    def _bins(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each watched column's bin per row (-1 where the value is missing)."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"frame must be a DataFrame. Received: {type(frame).__name__}")
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"frame: input columns {missing} missing (the reference has "
                f"{self.reference.columns}). Received columns: {list(frame.columns)}"
            )
        out = {}
        for column in self.columns:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
            edges = np.asarray(self.reference.bins[column].edges)
            out[column] = np.where(np.isfinite(values), bin_index(values, edges), -1)
        return out


def _series(errors, name: str) -> np.ndarray:
    values = np.asarray(errors, dtype=np.float64)
    if values.ndim != 1:
        raise DataError(f"{name} must be one-dimensional. Received: shape {values.shape}")
    return values
