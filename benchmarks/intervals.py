"""Prediction intervals: deepcast's five methods next to a seasonal-naive baseline, MAPIE and
NeuralForecast, all scored on the same test targets.

Protocol: lookback 168, horizon 24, chronological 60/20/20 split, the target's own history only
(NeuralForecast's NLinear reads no covariates). Every test window is scored (stride 1: the first
window's first target is the first test row, the last window's last target the last test row);
the test part is forecast with train + validation as history. Levels 80 and 95; coverage (a
fraction), mean width and Winkler score per level over every (window, step) target, filled
Beijing PM2.5 targets left out.

    deepcast      conformal and aci on --model, calibrated on the validation windows (fit with
                  validation data calibrates); mc_dropout on --dropout-model (an LSTM: it has
                  dropout); quantile (loss="quantile", 0.025 .. 0.975, plus CQR on its pairs) and
                  distribution (loss="gaussian"), each a fit of --model of its own
    baseline      seasonal naive (24) with empirical quantiles of its train + validation errors
    MAPIE         TimeSeriesRegressor, cv="prefit", on deepcast's own point forecasts, one per
                  horizon step: EnbPI-style scores refreshed once a day, and ACI (gamma as
                  deepcast's) updated origin by origin; both use only actuals already observed
    NeuralForecast  NLinear with PredictionIntervals("conformal_distribution"), calibrated on
                  every validation window, then refit on train + validation (its design)

Also times MC dropout: 100 samples in one batched call against 100 separate forward passes.
`--aci-gammas` adds deepcast ACI rows at other steps than its default (how the default was
chosen), `--aci-windows` rows that keep only the newest N scores of each step; `--skip` leaves
groups of rows out.

    cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python intervals.py
    OMP_NUM_THREADS=1 ../.venv/bin/python intervals.py --sets vic_elec --rows 3000 --epochs 1 \\
        --out /tmp/iv                                                            # smoke run
    OMP_NUM_THREADS=1 ../.venv/bin/python intervals.py --aci-gammas 0.001,0.005 \\
        --skip mc_dropout,heads,neuralforecast --out /tmp/gamma        # ACI_GAMMA's evidence
    OMP_NUM_THREADS=1 ../.venv/bin/python intervals.py --aci-windows 240,1000,3000 \\
        --skip mapie,mc_dropout,heads,neuralforecast --out /tmp/window   # why no window

Writes benchmarks/results/intervals.md and .json (atomically, after each data set).
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, json_safe, load_task, name_list, nf_long_frame, num, write_results

import deepcast as dc
from deepcast import _backend
from deepcast.evaluation import baselines, probabilistic
from deepcast.uncertainty import mc_dropout
from deepcast.uncertainty.conformal import ACI_GAMMA, AdaptiveConformal

LOOKBACK, HORIZON, PERIOD, VAL, TEST = 168, 24, 24, 0.2, 0.2
LEVELS = (80, 95)
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)
GAMMA = ACI_GAMMA  # deepcast's default ACI step, given to MAPIE's ACI too
SKIPPABLE = {"mapie", "mc_dropout", "heads", "neuralforecast"}
SAMPLES, BATCH = 100, 64
TOLERANCE = 0.02  # the goal: calibrated coverage within 2 points of nominal
PEERS = ("MAPIE", "NeuralForecast")


@dataclass
class Setup:
    """One data set, target only, and where it splits; test origins end a window whose H
    targets are all test rows."""

    name: str
    frame: pd.DataFrame
    target: str
    n_train: int
    n_val: int
    observed: np.ndarray

    def parts(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        end = self.n_train + self.n_val
        return (
            self.frame.iloc[: self.n_train],
            self.frame.iloc[self.n_train : end],
            self.frame.iloc[end:],
        )

    @property
    def origins(self) -> np.ndarray:
        return np.arange(self.n_train + self.n_val - 1, len(self.frame) - HORIZON)

    def rows(self, origins: np.ndarray) -> np.ndarray:
        return origins[:, None] + np.arange(1, HORIZON + 1)  # [n, H] target rows

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.target].to_numpy(np.float64)

    def test_input(self) -> pd.DataFrame:
        """The last `lookback` rows before the test part, then the test part: predict's row i
        forecasts from origin i (its last row forecasts past the end and is dropped)."""
        return self.frame.iloc[self.n_train + self.n_val - LOOKBACK :]


def setup_of(name: str, rows: int | None) -> Setup:
    task = load_task(name)
    frame, observed = task.frame[[task.target]], task.observed
    if rows:
        frame, observed = frame.iloc[-rows:], observed[-rows:]
    train, val, _ = dc.split(frame, val=VAL, test=TEST)
    return Setup(name, frame, task.target, len(train), len(val), observed)


def scores(setup: Setup, bands: dict) -> dict:
    """{level: coverage, width, winkler} over every observed test target."""
    rows = setup.rows(setup.origins)
    keep = setup.observed[rows]
    y = setup.y[rows][keep]
    out = {}
    for level, (lo, hi) in bands.items():
        lo, hi = np.asarray(lo)[keep], np.asarray(hi)[keep]
        if np.isfinite(lo).all() and np.isfinite(hi).all() and (lo <= hi).all():
            s = probabilistic.interval_scores(y, {level: (lo, hi)})
            out[level] = {k.split("_")[0]: v for k, v in s.items()}
        else:  # an ACI interval gone infinite (or a crossed CQR band): score it by hand
            alpha = (100 - level) / 100
            miss = np.maximum(lo - y, 0) + np.maximum(y - hi, 0)
            finite = np.isfinite(lo) & np.isfinite(hi)
            out[level] = {
                "coverage": float(np.mean((lo <= y) & (y <= hi))),
                "width": float(np.mean(hi - lo)),
                "width_finite": float(np.mean((hi - lo)[finite])),
                "winkler": float(np.mean(hi - lo + 2 / alpha * miss)),
                "non_finite": int((~finite).sum()),
            }
    return out


# ------------------------------------------------------------------------------ deepcast
def deepcast_fit(setup: Setup, args, model: str, **options) -> tuple[dc.Forecaster, float]:
    train, val, _ = setup.parts()
    f = dc.Forecaster(
        setup.target, lookback=LOOKBACK, horizon=HORIZON, model=model, seed=args.seed, **options
    )
    start = time.perf_counter()
    f.fit(train, validation=val, epochs=args.epochs, batch_size=BATCH, verbose=False)
    return f, time.perf_counter() - start


def deepcast_bands(f: dc.Forecaster, setup: Setup, method: str | None, seed: int = 0):
    """(point [n, H], {level: (lo, hi)}) at the test origins, by `method` (None: point only)."""
    out = f.predict(setup.test_input(), levels=LEVELS if method else None, method=method, seed=seed)
    n = len(setup.origins)
    assert out.index[0] == setup.frame.index[setup.origins[0]] and len(out) == n + HORIZON, (
        "misaligned"
    )
    steps = [f"[t+{h}]" for h in range(1, HORIZON + 1)]
    block = lambda prefix: out[[f"{prefix}{s}" for s in steps]].to_numpy()[:n]  # noqa: E731
    point = block(setup.target)
    return point, {lv: (block(f"lo_{lv}"), block(f"hi_{lv}")) for lv in (LEVELS if method else ())}


def aci_bands(
    f: dc.Forecaster, setup: Setup, point: np.ndarray, gamma: float, window: int | None = None
) -> dict:
    """ACI at step `gamma` around `point` [n, H], as predict(method="aci") computes it at the
    default step: from the forecaster's calibration scores, finite, fed each actual once
    observed; `window` keeps only the newest scores of each step."""
    actual = setup.y[setup.rows(setup.origins)]
    scores = f.conformal_.scores
    return {
        level: AdaptiveConformal(scores, level, gamma=gamma, window=window, finite=True).rolling(
            actual, point
        )
        for level in LEVELS
    }


def validation_forecasts(f: dc.Forecaster, setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """deepcast's point forecasts and the actuals at every validation window: what fit
    calibrated its conformal scores on."""
    origins = np.arange(setup.n_train - 1, setup.n_train + setup.n_val - HORIZON)
    data = setup.frame.iloc[setup.n_train - LOOKBACK : setup.n_train + setup.n_val]
    point = f.predict(data).to_numpy()[: len(origins)]
    actual = setup.y[setup.rows(origins)]
    # The same windows as fit's calibration: the sorted residuals are its scores.
    assert np.allclose(
        np.sort(np.abs(actual - point), 0), f.conformal_.scores, rtol=1e-4, atol=1e-3
    )
    return point, actual


def time_mc_dropout(f: dc.Forecaster, setup: Setup, seed: int, windows: int) -> dict:
    """100 dropout samples of the newest `windows` test windows (0: all) and of the newest one
    alone in one batched call, against 100 separate forward passes with dropout on, each in
    batches of 1024 windows as predict runs."""
    x = f._input_windows(f._frame(setup.test_input(), "data"))[: len(setup.origins)]
    x = x[-windows:] if windows else x
    out = {"windows": len(x), "samples": SAMPLES}
    for label, xs in (("test", x), ("one", x[-1:])):
        start = time.perf_counter()
        mc_dropout.sample(f.model_, xs, SAMPLES, seed)
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(SAMPLES):
            for i in range(0, len(xs), 1024):  # _backend.predict's batch size
                _backend.call_training(f.model_, xs[i : i + 1024])
        loop = time.perf_counter() - start
        out.update(
            {
                f"{label}_batched_s": batched,
                f"{label}_loop_s": loop,
                f"{label}_ratio": loop / batched,
            }
        )
    return out


# -------------------------------------------------------------------------------- peers
def seasonal_naive_bands(setup: Setup) -> dict:
    """Empirical quantiles of the seasonal naive's errors at every train + validation window."""
    y, past = setup.y, np.arange(PERIOD - 1, setup.n_train + setup.n_val - HORIZON)
    residuals = y[setup.rows(past)] - baselines.seasonal_naive(y, past, HORIZON, PERIOD)
    point = baselines.seasonal_naive(y, setup.origins, HORIZON, PERIOD)
    return probabilistic.empirical_quantile_intervals(point, residuals, LEVELS)


def mapie_bands(setup: Setup, val: tuple, point: np.ndarray, method: str) -> dict:
    """MAPIE's TimeSeriesRegressor per horizon step on deepcast's forecasts (cv="prefit"),
    calibrated on the validation windows. Step h's actual of origin s is fed back once it is
    observed, at origin s + h."""
    from mapie.regression import TimeSeriesRegressor
    from sklearn.base import BaseEstimator, RegressorMixin

    class Forecasts(RegressorMixin, BaseEstimator):
        """A 'fitted' regressor whose prediction for row id i is deepcast's forecast i."""

        def __init__(self, table=None):
            self.table = table

        def fit(self, X, y=None):
            self.n_features_in_ = 1
            return self

        def predict(self, X):
            return self.table[np.clip(np.asarray(X)[:, 0].astype(int), 0, len(self.table) - 1)]

    val_point, val_actual = val
    n_cal, m = len(val_point), len(point)
    y_test = setup.y[setup.rows(setup.origins)]
    ids = np.arange(n_cal + m, dtype=np.float64)[:, None]
    confidence = [lv / 100 for lv in LEVELS]
    lo, hi = (
        {lv: np.empty_like(point) for lv in LEVELS},
        {lv: np.empty_like(point) for lv in LEVELS},
    )
    for h in range(HORIZON):
        table = np.concatenate([val_point[:, h], point[:, h]])
        reg = TimeSeriesRegressor(Forecasts(table).fit(ids), method=method, cv="prefit")
        reg.fit(ids[:n_cal], val_actual[:, h])
        X, y, lag = ids[n_cal:], y_test[:, h], h + 1  # origin s is observed at origin s + lag
        block = 1 if method == "aci" else HORIZON  # ACI adapts origin by origin; EnbPI daily
        for b in range(0, m, block):
            fed = slice(max(0, b - lag - block + 1), max(0, b - lag + 1))  # newly observed
            if fed.stop > fed.start:
                if method == "aci":
                    reg.adapt_conformal_inference(
                        X[fed], y[fed], gamma=GAMMA, confidence_level=confidence
                    )
                reg.update(X[fed], y[fed])
            _, bounds = reg.predict(
                X[b : b + block], confidence_level=confidence, allow_infinite_bounds=True
            )
            for j, lv in enumerate(LEVELS):
                lo[lv][b : b + block, h], hi[lv][b : b + block, h] = (
                    bounds[:, 0, j],
                    bounds[:, 1, j],
                )
        if h % 6 == 5:
            print(f"      MAPIE {method}: step {h + 1}/{HORIZON}", flush=True)
    return {lv: (lo[lv], hi[lv]) for lv in LEVELS}


def neuralforecast_bands(setup: Setup, args) -> tuple[dict, float, str]:
    """NeuralForecast's NLinear/DLinear with its conformal_distribution intervals on every test
    window. Its point forecasts come from cross_validation(use_fitted=True); the bounds from
    its own add_conformal_distribution_intervals on its own calibration scores (a forecast
    plus offsets that do not depend on the forecast), checked against predict(level=...)."""
    import neuralforecast.models
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.utils import PredictionIntervals, add_conformal_distribution_intervals

    cls = getattr(
        neuralforecast.models, {"nlinear": "NLinear", "dlinear": "DLinear"}[args.nf_model]
    )
    per_epoch = -(-(setup.n_train - LOOKBACK - HORIZON + 1) // BATCH)
    model = cls(
        h=HORIZON, input_size=LOOKBACK, loss=MSE(), learning_rate=1e-3,
        max_steps=args.epochs * per_epoch, windows_batch_size=BATCH, scaler_type="standard",
        random_seed=args.seed,
        enable_progress_bar=False, enable_model_summary=False, logger=False, accelerator="cpu",
    )  # fmt: skip
    long = nf_long_frame(setup.frame, setup.target, setup.name)
    n_tv, name = setup.n_train + setup.n_val, cls.__name__
    windows = setup.n_val - HORIZON + 1  # every validation window, as deepcast calibrates
    nf = NeuralForecast(models=[model], freq="h")
    start = time.perf_counter()
    nf.fit(df=long.iloc[:n_tv], prediction_intervals=PredictionIntervals(n_windows=windows))
    fit_s = time.perf_counter() - start
    official = nf.predict(df=long.iloc[:n_tv], level=list(LEVELS))  # the first test window
    intervals, nf.prediction_intervals = nf.prediction_intervals, None  # use_fitted refuses it
    try:
        cv = nf.cross_validation(
            df=long, n_windows=None, test_size=len(long) - n_tv, step_size=1, use_fitted=True
        )
    finally:
        nf.prediction_intervals = intervals
    cv = cv.sort_values(["cutoff", "ds"])
    assert np.array_equal(cv["cutoff"].unique(), long["ds"].to_numpy()[setup.origins]), "misaligned"
    point = cv[name].to_numpy().reshape(-1, HORIZON)
    offsets, cols = add_conformal_distribution_intervals(
        np.zeros((HORIZON, 1)), nf._cs_df, name, windows, 1, HORIZON, level=list(LEVELS)
    )
    bands = {
        lv: tuple(point + offsets[:, cols.index(f"{name}-{s}-{lv}") + 1] for s in ("lo", "hi"))
        for lv in LEVELS
    }
    for lv in LEVELS:
        for side, got in zip(("lo", "hi"), bands[lv]):
            want = official[f"{name}-{side}-{lv}"].to_numpy()
            assert np.allclose(got[0], want, rtol=1e-3, atol=1e-3 * np.abs(want).max()), (lv, side)
    note = (
        f"NeuralForecast {name}: MSE, lr 1e-3, {args.epochs} epochs as steps, no early stopping, "
        f"windows scaled by its 'standard' scaler; calibrated on {windows} validation windows by a "
        "fit on train, then refit on train + validation; fit s holds both fits"
    )
    return bands, fit_s, note


# ------------------------------------------------------------------------------- driver
def float_list(text: str) -> list[float]:
    """--aci-gammas 0.001,0.005 -> [0.001, 0.005]; anything else is a one-line usage error."""
    try:
        return [float(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"numbers such as 0.001,0.005; got {text!r}") from None


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_set(setup: Setup, args, result: dict) -> None:
    """Every system on `setup`; appends table rows, timings, notes and skips to `result`."""
    n_test = len(setup.frame) - setup.n_train - setup.n_val
    print(f"\n== {setup.name}: {setup.n_train}/{setup.n_val}/{n_test} rows, "
          f"{len(setup.origins)} test windows", flush=True)  # fmt: skip

    def record(method: str, kind: str, bands: dict, fit_s: float, interval_s: float) -> None:
        for level, s in scores(setup, bands).items():
            result["rows"].append(
                {
                    "set": setup.name,
                    "method": method,
                    "kind": kind,
                    "level": level,
                    **s,
                    "fit_s": fit_s,
                    "interval_s": interval_s,
                }
            )
            print(f"   {method:<46} {level}%  coverage {s['coverage']:.3f}  width "
                  f"{s['width']:9.2f}  winkler {s['winkler']:9.2f}  fit {fit_s:6.1f}s  "
                  f"intervals {interval_s:6.1f}s", flush=True)  # fmt: skip

    def attempt(label: str, fn) -> None:
        try:
            fn()
        except Exception as err:  # one failing system must not end the run
            print(f"   {label}: skipped, {type(err).__name__}: {err}", flush=True)
            result["skipped"].append(f"{setup.name} {label}: {type(err).__name__}: {err}")

    bands, seconds = timed(seasonal_naive_bands, setup)
    record(f"seasonal naive ({PERIOD}) empirical quantiles", "baseline", bands, 0.0, seconds)

    m = args.model
    print(f"   fitting deepcast {m} ...", flush=True)
    f, fit_s = deepcast_fit(setup, args, m)
    point, _ = deepcast_bands(f, setup, None)
    for method in ("conformal", "aci"):
        (_, bands), seconds = timed(deepcast_bands, f, setup, method)
        record(f"deepcast {m} {method}", "deepcast", bands, fit_s, seconds)
    for gamma in args.aci_gammas:
        bands, seconds = timed(aci_bands, f, setup, point, gamma)
        record(f"deepcast {m} aci, gamma {gamma}", "deepcast", bands, fit_s, seconds)
    for window in args.aci_windows:
        bands, seconds = timed(aci_bands, f, setup, point, ACI_GAMMA, window)
        record(f"deepcast {m} aci, window {window}", "deepcast", bands, fit_s, seconds)

    def mapie_rows() -> None:
        note = (
            "MAPIE: TimeSeriesRegressor(cv='prefit') per step on deepcast's forecasts, "
            "calibrated on the validation windows (its default asymmetric score: quantiles "
            "alpha/2 and 1 - alpha/2 of the signed residuals); update() keeps as many scores as "
            "it was calibrated on, dropping the oldest; ACI also adapts alpha origin by origin "
            "(adapt_conformal_inference, clipped to [0, 1] by MAPIE)"
        )
        if note not in result["notes"]:
            result["notes"].append(note)
        val = validation_forecasts(f, setup)
        for method, label in (
            ("enbpi", "EnbPI, scores refreshed daily"),
            ("aci", f"ACI, gamma {GAMMA}"),
        ):
            bands, seconds = timed(mapie_bands, setup, val, point, method)
            record(f"MAPIE {label} (deepcast {m} forecasts)", "peer", bands, fit_s, seconds)

    def dropout_rows() -> None:
        d = args.dropout_model
        if d == m:
            g, g_s = f, fit_s
        else:
            print(f"   fitting deepcast {d} ...", flush=True)
            g, g_s = deepcast_fit(setup, args, d)
        label = f"deepcast {d} mc_dropout"
        if (g.start_ or {}).get("gate_closed"):  # its dropout would not move the forecast
            print(
                f"   {d} was gated off to its baseline: refit with baseline_start=False", flush=True
            )
            g, g_s = deepcast_fit(setup, args, d, baseline_start=False)
            label += " (baseline_start=False)"
        print(f"   sampling {SAMPLES} dropout forecasts of every test window ...", flush=True)
        (_, bands), seconds = timed(deepcast_bands, g, setup, "mc_dropout", args.seed)
        record(label, "deepcast", bands, g_s, seconds)
        t = {
            "set": setup.name,
            "model": d,
            **time_mc_dropout(g, setup, args.seed, args.timing_windows),
        }
        result["mc_dropout_timing"].append(t)
        print(f"   MC dropout, {SAMPLES} samples of {t['windows']} test windows: batched "
              f"{t['test_batched_s']:.1f}s, {SAMPLES} separate passes {t['test_loop_s']:.1f}s "
              f"({t['test_ratio']:.2f}x); one window: {t['one_batched_s'] * 1e3:.0f} ms vs "
              f"{t['one_loop_s'] * 1e3:.0f} ms ({t['one_ratio']:.1f}x)", flush=True)  # fmt: skip

    def head_rows() -> None:
        print(f"   fitting deepcast {m}, loss quantile ...", flush=True)
        q, q_s = deepcast_fit(setup, args, m, loss="quantile", quantiles=QUANTILES)
        for method, label in (("quantile", "quantile"), ("conformal", "quantile + CQR")):
            (_, bands), seconds = timed(deepcast_bands, q, setup, method)
            record(f"deepcast {m} {label}", "deepcast", bands, q_s, seconds)
        print(f"   fitting deepcast {m}, loss gaussian ...", flush=True)
        g, g_s = deepcast_fit(setup, args, m, loss="gaussian")
        (_, bands), seconds = timed(deepcast_bands, g, setup, "distribution")
        record(f"deepcast {m} distribution (gaussian)", "deepcast", bands, g_s, seconds)

    def nf_rows() -> None:
        print(
            f"   fitting NeuralForecast {args.nf_model} with conformal calibration ...", flush=True
        )
        (bands, nf_s, note), seconds = timed(neuralforecast_bands, setup, args)
        record(f"NeuralForecast {args.nf_model} conformal_distribution", "peer", bands, nf_s,
               seconds - nf_s)  # fmt: skip
        if note not in result["notes"]:
            result["notes"].append(note)

    for group, label, rows in (
        ("mapie", "MAPIE", mapie_rows),
        ("mc_dropout", "mc_dropout", dropout_rows),
        ("heads", "quantile/distribution", head_rows),
        ("neuralforecast", "NeuralForecast", nf_rows),
    ):
        if group in args.skip:
            result["skipped"].append(f"{setup.name} {label}: left out by --skip")
        else:
            attempt(label, rows)


def goals(rows: list[dict], model: str) -> list[str]:
    """The issue's goals, one line each: deepcast's conformal and ACI coverage within 2 points
    of nominal; and width no larger than the narrowest peer's among the peers whose coverage
    is within 2 points of nominal too ("equal coverage"). The Winkler score, which needs no
    such matching, is given beside it against the best peer's."""
    lines = []
    for (name, level), group in pd.DataFrame(rows).groupby(["set", "level"], sort=False):
        nominal = level / 100

        def ok(r, nominal=nominal) -> bool:
            return abs(r["coverage"] - nominal) <= TOLERANCE

        peers = [r for _, r in group.iterrows() if r["kind"] == "peer"]
        valid = [r for r in peers if ok(r)]
        narrowest = min(valid, key=lambda r: r["width"]) if valid else None
        best = min(peers, key=lambda r: r["winkler"]) if peers else None
        for method in ("conformal", "aci"):
            mine = group[group["method"] == f"deepcast {model} {method}"]
            if mine.empty:
                continue
            r = mine.iloc[0]
            line = (f"{name} {level}% {method}: coverage {r['coverage']:.3f} vs {nominal:.2f}: "
                    f"{'met' if ok(r) else 'NOT met'}; ")  # fmt: skip
            if narrowest is None:
                line += "width: no peer within 2 points of nominal to compare with"
            else:
                narrow = ok(r) and r["width"] <= narrowest["width"]
                line += (f"width {width(r['width'])} vs {width(narrowest['width'])} of "
                         f"{narrowest['method']} (coverage {narrowest['coverage']:.3f}): "
                         f"{'met' if narrow else 'NOT met'}")  # fmt: skip
            if best is not None:
                line += (f"; winkler {width(r['winkler'])} vs best peer's "
                         f"{width(best['winkler'])} ({best['method']})")  # fmt: skip
            lines.append(line)
    return lines


def width(value: float) -> str:
    """Widths and Winkler scores: "inf" when an interval was infinite (ACI's alpha_t <= 0)."""
    return "inf" if value == np.inf else num(value, 2)


def markdown(result: dict, args) -> str:
    lines = [
        f"Lookback {LOOKBACK}, horizon {HORIZON}, split 60/20/20, target only; every test window "
        f"scored (train + validation as history), filled targets left out. deepcast --model "
        f"{args.model}, --dropout-model {args.dropout_model}, {args.epochs} epochs, seed "
        f"{args.seed}. Coverage is a fraction; width and Winkler in the target's units. fit s: "
        "the fit of the model the intervals come from (MAPIE's: deepcast's); intervals s: "
        "producing the test intervals. Peers: MAPIE and NeuralForecast rows.",
        "",
        "| set | method | level | coverage | width | winkler | fit s | intervals s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['set']} | {r['method']} | {r['level']} | {r['coverage']:.3f} | "
            f"{width(r['width'])} | {width(r['winkler'])} | {num(r['fit_s'])} | "
            f"{num(r['interval_s'])} |"
        )
    for r in result["rows"]:
        if r.get("non_finite"):
            lines.append(
                f"\n{r['set']} {r['method']} {r['level']}%: {r['non_finite']} infinite intervals "
                f"(alpha_t reached 0); mean width of the others {r['width_finite']:.2f}."
            )
    lines += ["", "Goals:", *(f"- {g}" for g in goals(result["rows"], args.model))]
    if result["mc_dropout_timing"]:
        lines += ["", "MC dropout, 100 samples: one batched call vs 100 separate forward passes:"]
        for t in result["mc_dropout_timing"]:
            lines.append(
                f"- {t['set']} ({t['model']}): the newest {t['windows']} test windows "
                f"{t['test_batched_s']:.1f}s "
                f"vs {t['test_loop_s']:.1f}s ({t['test_ratio']:.2f}x); the newest window alone "
                f"{t['one_batched_s'] * 1e3:.0f} ms vs {t['one_loop_s'] * 1e3:.0f} ms "
                f"({t['one_ratio']:.1f}x)"
            )
    lines += ["", *(f"- {n}" for n in result["notes"])] if result["notes"] else []
    lines += ["", *(f"- skipped: {s}" for s in result["skipped"])] if result["skipped"] else []
    if args.rows:
        lines += ["", f"Smoke run: the newest {args.rows} rows of each set only."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--sets", type=name_list({"vic_elec", "beijing_pm25"}), default="vic_elec,beijing_pm25")
    add("--epochs", type=int, default=10, help="epoch budget of every trained system")
    add("--seed", type=int, default=0)
    add("--model", default="nlinear", help="deepcast model of the conformal, aci and head rows")
    add("--dropout-model", default="lstm", help="deepcast model of the mc_dropout row")
    add("--nf-model", choices=("nlinear", "dlinear"), default="nlinear")
    add("--timing-windows", type=int, default=512, help="MC dropout timing: newest test "
        "windows (0: all)")  # fmt: skip
    add("--rows", type=int, default=None, help="smoke runs: the newest rows of each set only")
    add("--aci-gammas", type=float_list, default=[], help="extra deepcast ACI rows at these steps")
    add(
        "--aci-windows",
        type=lambda t: [int(v) for v in float_list(t)],
        default=[],
        help="extra deepcast ACI rows keeping only the newest N scores per step",
    )
    add("--skip", type=name_list(SKIPPABLE), default=[], help="row groups to leave out: "
        + ", ".join(sorted(SKIPPABLE)))  # fmt: skip
    add("--out", type=Path, default=RESULTS, help="directory of the result files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("lightning.pytorch", "lightning_fabric", "pytorch_lightning", "deepcast"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")  # MAPIE's update() warns on every call

    result = {"rows": [], "mc_dropout_timing": [], "notes": [], "skipped": []}
    for name in args.sets:
        run_set(setup_of(name, args.rows), args, result)
        table = markdown(result, args)
        settings = vars(args) | {"out": str(args.out), "lookback": LOOKBACK, "horizon": HORIZON,
                                 "levels": list(LEVELS), "gamma": GAMMA}  # fmt: skip
        payload = {"settings": settings, **result, "rows": json_safe(result["rows"]),
                   "goals": goals(result["rows"], args.model)}  # fmt: skip
        write_results(args.out, "intervals", table, payload)
    print("\n" + table, flush=True)
    print(f"wrote {args.out}/intervals.md, .json", flush=True)


if __name__ == "__main__":
    main()
