"""Conformal prediction intervals for H-step forecasts: split conformal, CQR and adaptive (ACI).

Pure numerics over numpy arrays with one row per forecast origin and one column per horizon
step. Every step is calibrated on its own scores: errors grow with the step, so one width for
all steps would under-cover the far steps and over-cover the near ones. Levels are percentages
as elsewhere in deepcast: `level=90` asks for 90% intervals, i.e. alpha = 0.1.

The conformal quantile of n scores at miscoverage alpha is the k-th smallest score with
k = ceil((n + 1)(1 - alpha)), the finite-sample correction that makes coverage at least
1 - alpha for exchangeable data. When k > n no score is large enough and the interval is
infinite (bounds -inf and inf): ask for a lower level or calibrate on more rows.

>>> import numpy as np
>>> y = np.array([[1.0], [2.0], [3.0], [4.0]])
>>> point = np.array([[1.5], [2.0], [2.0], [4.5]])  # scores 0.5, 0, 1, 0.5
>>> SplitConformal.fit(y, point).interval(np.array([[10.0]]), level=50)  # k = ceil(5 * 0.5) = 3
(array([[9.5]]), array([[10.5]]))
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from deepcast.errors import ConfigError, DataError

# ACI's step, the paper's. 0.002 had the better Winkler score on both hourly sets
# (results/intervals_aci_gamma.md) but adapts too slowly on aapl_stock's 252 test days
# (80%: coverage 0.64 against 0.69, Winkler 13.0 against 12.4; results/aci_gamma_aapl.md).
ACI_GAMMA = 0.005


def _alpha(level: Any, name: str = "level") -> float:
    """Miscoverage 1 - level/100 of a percentage strictly between 0 and 100."""
    real = isinstance(level, (int, float, np.integer, np.floating)) and not isinstance(level, bool)
    if not real or not 0 < level < 100:
        raise ConfigError(
            f"{name} must be a percentage strictly between 0 and 100, e.g. 90. "
            f"Received: {name}={level!r}"
        )
    # (100 - level) / 100 is the nearest float to alpha for whole percents; 1 - level / 100
    # is not (1 - 0.9 = 0.09999999999999998).
    return (100.0 - float(level)) / 100.0


def _rank(n: int, alpha: float) -> int:
    """k = ceil((n + 1)(1 - alpha)): the conformal quantile is the k-th smallest of n scores."""
    # Rounding to 1e-9 first keeps float dust in (1 - alpha) from adding a whole rank.
    return math.ceil(round((1.0 - alpha) * (n + 1), 9))


def _kth(sorted_scores: np.ndarray | list[float], k: int) -> Any:
    """The k-th smallest of ascending scores (rows): inf when k > n, 0 when k < 1 (see ACI)."""
    n = len(sorted_scores)
    if k > n:
        return np.full(np.shape(sorted_scores)[1:], np.inf)
    if k < 1:
        return np.zeros(np.shape(sorted_scores)[1:])
    return np.asarray(sorted_scores[k - 1], dtype=np.float64)


def _floats(name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a numeric array. Received: {exc}") from None


def _matrix(
    name: str,
    value: Any,
    shape: tuple[int, ...] | None = None,
    horizon: int | None = None,
    allow_nan: bool = False,
    allow_inf: bool = False,
) -> np.ndarray:
    """`value` as a float64 (n, H) array, checked against an expected shape or horizon."""
    a = _floats(name, value)
    if a.ndim != 2 or a.size == 0:
        raise DataError(
            f"{name} must have shape (n, H): one row per forecast origin, one column per "
            f"horizon step (pass x.reshape(-1, 1) for one step). Received shape {a.shape}"
        )
    if shape is not None and a.shape != shape:
        raise DataError(f"{name} must have shape {shape}. Received shape {a.shape}")
    if horizon is not None and a.shape[1] != horizon:
        raise DataError(f"{name} must have {horizon} columns, one per step. Received {a.shape}")
    bad = (np.isnan(a) & (not allow_nan)) | (np.isinf(a) & (not allow_inf))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{name} has a non-finite value {a[row, col]} at row {row}, step {col}")
    return a


def _row(name: str, value: Any, horizon: int, **allow: bool) -> np.ndarray:
    """`value` as a float64 (H,) row of one forecast origin; `allow` as for `_matrix`."""
    a = _floats(name, value)
    if a.shape != (horizon,):
        raise DataError(f"{name} must have shape ({horizon},). Received shape {a.shape}")
    return _matrix(name, a[None, :], **allow)[0]


def _cqr_scores(y: np.ndarray, lo: Any, hi: Any, names: tuple[str, str]) -> np.ndarray:
    """CQR scores max(lo - y, y - hi): positive outside the model's band, negative inside."""
    lo = _matrix(names[0], lo, shape=y.shape)
    hi = _matrix(names[1], hi, shape=y.shape)
    return np.maximum(lo - y, y - hi)  # (n, H)


def _columns(name: str, d: Mapping[str, Any], key: str) -> np.ndarray:
    """A stored (H lists of n floats) entry of a to_dict() mapping as an (n, H) array."""
    try:
        return _matrix(f"{name}[{key!r}]", d[key]).T
    except KeyError:
        raise DataError(f"{name} has no {key!r} entry; it is not a conformal state") from None


class SplitConformal:
    """Split conformal intervals per horizon step, with optional CQR for quantile forecasts.

    Calibrate on held-out forecasts (never the rows the model was trained on). The score of
    origin i at step h is |y[i, h] - point[i, h]|; the interval at level L is
    point -/+ q_h, with q_h the ceil((n + 1)(1 - alpha))-th smallest score of step h and
    alpha = 1 - L/100. When that rank exceeds n, q_h = inf and the interval is infinite.

    CQR (Romano, Patterson and Candes 2019) conformalizes a model's own quantile forecasts:
    the score is max(lo - y, y - hi) and the interval lo - q_h, hi + q_h, which widens a band
    that under-covers and narrows (q_h < 0) one that over-covers. The result is not clipped,
    so a too-wide band can narrow until lo > hi at a low level, as in the paper. Pass the
    quantile forecasts either per level (`quantile_pairs={90: (lo, hi)}`, used at that level)
    or as one pair (`lower`, `upper`), whose scores serve every level without its own pair.

    Build with `SplitConformal.fit(...)`; the constructor takes ready scores (as `from_dict`).

    >>> sc = SplitConformal.fit(y_cal, point_cal)          # (n, H) each
    >>> lo, hi = sc.interval(point_test, level=90)          # (m, H) each
    >>> sc = SplitConformal.fit(y_cal, point_cal, quantile_pairs={90: (q05_cal, q95_cal)})
    >>> lo, hi = sc.interval(point_test, 90, lo=q05_test, hi=q95_test)
    """

    def __init__(
        self,
        scores: np.ndarray,
        cqr_scores: Mapping[float, np.ndarray] | None = None,
        pair_scores: np.ndarray | None = None,
    ) -> None:
        self.scores = np.sort(_matrix("scores", scores), axis=0)  # (n, H), ascending per step
        if (self.scores < 0).any():
            raise DataError("scores are absolute residuals and cannot be negative")
        shape = self.scores.shape
        self.cqr_scores: dict[float, np.ndarray] = {}
        for level, values in (cqr_scores or {}).items():
            _alpha(level, "cqr_scores level")
            name = f"cqr_scores[{level!r}]"
            self.cqr_scores[float(level)] = np.sort(_matrix(name, values, shape), axis=0)
        self.pair_scores = (
            None if pair_scores is None else np.sort(_matrix("pair_scores", pair_scores, shape), 0)
        )

    @classmethod
    def fit(
        cls,
        y: np.ndarray,
        point: np.ndarray,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        quantile_pairs: Mapping[float, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> SplitConformal:
        """Calibrate on actuals `y` and forecasts `point`, both (n, H); see the class docstring.

        `lower`/`upper` are one pair of (n, H) quantile forecasts; `quantile_pairs` maps a
        level (percent) to its own (lo, hi) pair of (n, H) arrays.
        """
        y = _matrix("y", y)
        point = _matrix("point", point, shape=y.shape)
        if (lower is None) != (upper is None):
            missing = "upper" if upper is None else "lower"
            raise ConfigError(f"lower and upper are one pair; pass both. Received: {missing}=None")
        pair = None if lower is None else _cqr_scores(y, lower, upper, ("lower", "upper"))
        if quantile_pairs is not None and not isinstance(quantile_pairs, Mapping):
            raise ConfigError(
                "quantile_pairs must map a level to a (lo, hi) pair, e.g. {90: (lo, hi)}. "
                f"Received: quantile_pairs={type(quantile_pairs).__name__}"
            )
        cqr = {}
        for level, pair_of_level in (quantile_pairs or {}).items():
            _alpha(level, "quantile_pairs level")
            if not isinstance(pair_of_level, (tuple, list)) or len(pair_of_level) != 2:
                raise ConfigError(
                    f"quantile_pairs[{level!r}] must be a (lo, hi) pair of (n, H) arrays"
                )
            names = (f"quantile_pairs[{level!r}][0]", f"quantile_pairs[{level!r}][1]")
            cqr[level] = _cqr_scores(y, pair_of_level[0], pair_of_level[1], names)
        return cls(np.abs(y - point), cqr, pair)

    @property
    def n(self) -> int:
        """Calibration size: the number of forecast origins scored."""
        return self.scores.shape[0]

    @property
    def horizon(self) -> int:
        """Number of horizon steps H, each with its own scores."""
        return self.scores.shape[1]

    def quantile(self, level: float, cqr: bool = False) -> np.ndarray:
        """q_h of every step, shape (H,): inf where the rank ceil((n+1)(1-alpha)) exceeds n.

        With `cqr=True` the CQR scores of `level` (or of the `lower`/`upper` pair) are used.
        """
        alpha = _alpha(level)
        scores = self.scores
        if cqr:
            scores = self.cqr_scores.get(float(level), self.pair_scores)
            if scores is None:
                raise ConfigError(
                    f"no quantile forecasts were calibrated for level={level!r} (calibrated: "
                    f"{sorted(self.cqr_scores)}); fit with quantile_pairs={{{level!r}: "
                    "(lo, hi)}, or with lower= and upper=, or leave lo and hi out"
                )
        return _kth(scores, _rank(self.n, alpha))

    def interval(
        self,
        point: np.ndarray,
        level: float,
        lo: np.ndarray | None = None,
        hi: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (lo, hi), each (m, H), for forecasts `point` (m, H) at `level` percent.

        Without `lo`/`hi`: point -/+ q_h. With the model's quantile forecasts `lo`/`hi`
        (m, H), CQR: lo - q_h, hi + q_h. An infinite q_h gives -inf/inf bounds.
        """
        point = _matrix("point", point, horizon=self.horizon)
        if (lo is None) != (hi is None):
            raise ConfigError("lo and hi are one pair of quantile forecasts; pass both or neither")
        if lo is None:
            q = self.quantile(level)  # (H,) broadcasts over the m rows
            return point - q, point + q
        lo = _matrix("lo", lo, shape=point.shape)
        hi = _matrix("hi", hi, shape=point.shape)
        q = self.quantile(level, cqr=True)
        return lo - q, hi + q

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe state: every score list is one step's scores, ascending."""
        return {
            "method": "split_conformal",
            "n": self.n,
            "horizon": self.horizon,
            "scores": self.scores.T.tolist(),  # H lists of n floats
            "cqr_scores": {repr(lvl): s.T.tolist() for lvl, s in self.cqr_scores.items()},
            "pair_scores": None if self.pair_scores is None else self.pair_scores.T.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitConformal:
        """Rebuild from `to_dict()` output (after a JSON round trip, too)."""
        if not isinstance(d, Mapping) or d.get("method") != "split_conformal":
            raise DataError("not a split conformal state: expected method='split_conformal'")
        scores = _columns("split conformal state", d, "scores")
        cqr = {}
        for key in d.get("cqr_scores") or {}:
            try:
                level = float(key)
            except ValueError:
                raise DataError(f"cqr_scores key {key!r} is not a level") from None
            cqr[level] = _columns("cqr_scores", d["cqr_scores"], key)
        pair = None if d.get("pair_scores") is None else _columns("state", d, "pair_scores")
        out = cls(scores, cqr, pair)
        if (d.get("n"), d.get("horizon")) != (out.n, out.horizon):
            raise DataError("split conformal state: n and horizon disagree with its scores")
        return out


class AdaptiveConformal:
    """Adaptive conformal inference (ACI; Gibbs and Candes 2021), per horizon step.

    Each step h keeps its own miscoverage alpha_t[h], starting at alpha = 1 - level/100, and a
    set of absolute residuals, starting with the calibration `scores` (n, H). The interval
    for the next origin is point -/+ q, q the ceil((k + 1)(1 - alpha_t))-th smallest of the k
    scores held (inf when that rank exceeds k). When its actual arrives,

        alpha_{t+1} = alpha_t + gamma * (alpha - err_t),   err_t = 1 if the actual fell outside

    (the closed interval: an actual on a bound is covered), and its residual joins the
    scores; with `window`, only the last `window` scores of each step are kept. alpha_t is
    not clipped, as in the paper, whose long-run bound |mean err - alpha| <=
    (max(alpha, 1 - alpha) + gamma) / (gamma T) relies on it: alpha_t <= 0 gives an infinite
    interval, alpha_t >= 1 an empty one (zero width, at the point). A larger `gamma` adapts
    faster, tightens that bound and makes the width jumpier (the default, ACI_GAMMA = 0.005,
    gives 1.8 points over 8700 origins at level 80). `finite=True` (what
    `predict(method="aci")` uses) gives the widest interval the held scores allow (their
    maximum) where the paper's would be infinite: a band a planner can draw, at the price of
    the bound's exactness in that case.

    Maturity: the actual of origin t at step h (1-based) is known at origin t + h. `rolling`
    honours that: at origin t, step h uses the updates of origins <= t - h only. `update`
    applies a row at once; entries still unknown may be NaN and are skipped.

    >>> aci = AdaptiveConformal(np.abs(y_cal - point_cal), level=90)
    >>> lo, hi = aci.rolling(y_test, point_test)  # (m, H) each, walked origin by origin
    """

    def __init__(
        self,
        scores: np.ndarray,
        level: float,
        gamma: float = ACI_GAMMA,
        window: int | None = None,
        finite: bool = False,
    ) -> None:
        scores = _matrix("scores", scores)  # (n, H)
        self.finite = bool(finite)
        self._setup(list(scores.T), level, gamma, window, alpha_t=None)

    def _setup(
        self,
        columns: list[np.ndarray],
        level: float,
        gamma: float,
        window: int | None,
        alpha_t: Any,
    ) -> None:
        self.alpha = _alpha(level)
        self.level = float(level)
        real = isinstance(gamma, (int, float, np.integer, np.floating))
        if not real or isinstance(gamma, bool) or not 0 <= gamma <= 1:
            raise ConfigError(f"gamma must be a number in [0, 1]. Received: gamma={gamma!r}")
        self.gamma = float(gamma)
        if window is not None and (
            not isinstance(window, (int, np.integer)) or isinstance(window, bool) or window < 1
        ):
            raise ConfigError(f"window must be None or a positive integer. Received: {window=!r}")
        self.window = None if window is None else int(window)
        for h, column in enumerate(columns):
            if np.size(column) == 0 or (np.asarray(column) < 0).any():
                raise DataError(f"scores of step {h + 1} must be non-empty and non-negative")
        # Arrival order decides which score a window drops next; the sorted copy gives ranks.
        self._arrived = [deque(map(float, c[-self.window :] if window else c)) for c in columns]
        self._sorted = [sorted(arrived) for arrived in self._arrived]
        if alpha_t is None:
            alpha_t = np.full(len(columns), self.alpha)
        self.alpha_t = _row("alpha_t", alpha_t, len(columns))

    @property
    def horizon(self) -> int:
        """Number of horizon steps H."""
        return len(self._arrived)

    def _q(self, h: int) -> float:
        """Current conformal quantile of step h (0-based)."""
        held = self._sorted[h]
        rank = _rank(len(held), self.alpha_t[h])
        if self.finite:  # the widest interval the scores allow, instead of an infinite one
            rank = min(rank, len(held))
        return float(_kth(held, rank))

    def _interval_row(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.array([self._q(h) for h in range(self.horizon)])  # (H,)
        return point - q, point + q

    def _update_step(self, h: int, actual: float, point: float, lo: float, hi: float) -> None:
        err = 0.0 if lo <= actual <= hi else 1.0
        self.alpha_t[h] += self.gamma * (self.alpha - err)
        score = abs(float(actual) - float(point))
        arrived, held = self._arrived[h], self._sorted[h]
        if self.window is not None and len(arrived) == self.window:
            del held[bisect.bisect_left(held, arrived.popleft())]
        arrived.append(score)
        bisect.insort(held, score)

    def interval(self, point_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (lo, hi), each (H,), around the next origin's forecast `point_row` (H,)."""
        return self._interval_row(_row("point_row", point_row, self.horizon))

    def update(
        self,
        actual_row: np.ndarray,
        point_row: np.ndarray,
        lo_row: np.ndarray | None = None,
        hi_row: np.ndarray | None = None,
    ) -> AdaptiveConformal:
        """Feed back the actuals (H,) of one origin; NaN entries (not yet known) are skipped.

        err_t is judged against the interval that was issued for that origin: pass it as
        `lo_row`/`hi_row`, or leave them out to use the interval of the current state, which
        is the issued one when nothing was updated in between (e.g. horizon 1, or `interval`
        then `update` for each origin in turn).
        """
        actual = _row("actual_row", actual_row, self.horizon, allow_nan=True)
        point = _row("point_row", point_row, self.horizon)
        if (lo_row is None) != (hi_row is None):
            raise ConfigError("lo_row and hi_row are one issued interval; pass both or neither")
        if lo_row is None:
            lo, hi = self._interval_row(point)
        else:
            lo = _row("lo_row", lo_row, self.horizon, allow_inf=True)
            hi = _row("hi_row", hi_row, self.horizon, allow_inf=True)
        for h in np.flatnonzero(~np.isnan(actual)):
            self._update_step(int(h), actual[h], point[h], lo[h], hi[h])
        return self

    def rolling(self, y: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intervals (lo, hi), each (m, H), for origins walked in order, updating as they mature.

        At origin t, step h first takes the update of origin t - h (its actual is known now),
        then issues its interval, so only matured actuals are used. After the call the state
        is that of origin m: the step-h actuals of the last h origins are not used. NaN in `y`
        marks an actual never observed; it is skipped.
        """
        y = _matrix("y", y, horizon=self.horizon, allow_nan=True)
        point = _matrix("point", point, shape=y.shape)
        m, horizon = y.shape
        lo, hi = np.empty_like(point), np.empty_like(point)  # (m, H)
        for t in range(m + 1):
            for h in range(horizon):
                s = t - h - 1  # origin whose step h + 1 matures at origin t
                if s >= 0 and not np.isnan(y[s, h]):
                    self._update_step(h, y[s, h], point[s, h], lo[s, h], hi[s, h])
            if t < m:
                lo[t], hi[t] = self._interval_row(point[t])
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe state; scores of each step in arrival order (the window drops
        the oldest first)."""
        return {
            "method": "adaptive_conformal",
            "level": self.level,
            "gamma": self.gamma,
            "window": self.window,
            "alpha_t": self.alpha_t.tolist(),
            "scores": [list(arrived) for arrived in self._arrived],
            "finite": self.finite,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AdaptiveConformal:
        """Rebuild from `to_dict()` output; the state continues exactly where it stopped."""
        if not isinstance(d, Mapping) or d.get("method") != "adaptive_conformal":
            raise DataError("not an ACI state: expected method='adaptive_conformal'")
        missing = {"level", "gamma", "window", "alpha_t", "scores"} - set(d)
        if missing:
            raise DataError(f"ACI state is missing {sorted(missing)}")
        columns = [_matrix(f"scores[{h}]", [c]).ravel() for h, c in enumerate(d["scores"])]
        out = cls.__new__(cls)
        out.finite = bool(d.get("finite", False))
        out._setup(columns, d["level"], d["gamma"], d["window"], alpha_t=d["alpha_t"])
        return out
