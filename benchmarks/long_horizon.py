"""Long-horizon benchmark: the DLinear/PatchTST protocol on deepcast's real data sets.

The protocol of the long-horizon literature (Zeng et al. 2023, DLinear; Nie et al. 2023,
PatchTST): lookback 336, horizon 96, a chronological 60/20/20 train/val/test split, every column
z-scored with the training part's mean and std, and every test window scored (stride 1, no
partial batch dropped: the first window's first target is the first test row, the last
window's last target the last test row). MSE and MAE of the target, in z-scored units.

Modes: "S" reads the target's own history only; "MS" the target plus the data set's numeric
covariates (vic_elec: temperature, holiday; beijing_pm25: all but the categorical wind
direction), still forecasting the target.

Systems, all on the same z-scored frame and scored on the same windows: the deepcast models in
--models (by default every family but `tft` and `deepar`, which --models accepts too: they add
the calendar of the forecast steps, and DeepAR trains on its own likelihood and is scored on its
median; on two cores their lookback-336 fits take hours per seed), ridge on the flattened
window (scikit-learn), the seasonal naive (period 24), and
NeuralForecast's DLinear, NLinear, PatchTST, LSTM and NBEATS (--peers; its TFT and DeepAR on
request, reading the same calendar of the forecast steps as deepcast's) with the same lookback,
horizon, MSE loss (DeepAR: its own likelihood), learning rate, windows per batch, epoch budget
(as steps), early-stopping patience and validation part. Trained systems are fitted once per
seed; the table holds the means.

    make long-horizon                                     # both data sets, S and MS, 3 seeds
    .venv/bin/python benchmarks/long_horizon.py --datasets vic_elec --modes S --seeds 0
    .venv/bin/python benchmarks/long_horizon.py --datasets vic_elec --models lstm,nlinear \\
        --peers lstm,nlinear --limit-train-rows 3000 --epochs 1 --seeds 0 --out /tmp/lh
    .venv/bin/python benchmarks/long_horizon.py --datasets beijing_pm25 --modes S --models nbeats \\
        --peers none --model-options units=32 --forecaster-args window_norm=true --suffix _nb32

Writes benchmarks/results/long_horizon<--suffix>_<dataset>.md and .json (atomically, after every
system, so an interrupted run keeps what it measured) and prints the table.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from _common import (
    RESULTS,
    json_safe,
    key_values,
    load_task,
    name_list,
    nf_long_frame,
    num,
    seed_list,
    write_results,
)

import deepcast as dc
from deepcast import models
from deepcast.data.encoding import calendar_features
from deepcast.evaluation import baselines

LOOKBACK, HORIZON, PERIOD, VAL, TEST = 336, 96, 24, 0.2, 0.2
# Deepcast's defaults, given to the peers too: their own defaults differ per model (DLinear
# 1e-4, LSTM 1e-3) and all default to MAE loss, while this protocol scores (and deepcast
# trains) MSE.
LEARNING_RATE, PATIENCE = 1e-3, 5
# Forecaster arguments the protocol (or the setup) sets: --forecaster-args may not change them.
PROTOCOL_ARGS = {"target", "lookback", "horizon", "model", "features", "seed", "calendar"}
MODELS = "lstm,bilstm,cnn_lstm,dlinear,nlinear,transformer,nbeats"
PEERS = {
    "dlinear": "DLinear",
    "nlinear": "NLinear",
    "patchtst": "PatchTST",
    "lstm": "LSTM",
    "nbeats": "NBEATS",
    "tft": "TFT",
    "deepar": "DeepAR",
}
DEFAULT_PEERS = "dlinear,nlinear,patchtst,lstm,nbeats"  # tft, deepar: hours per seed at 336
# Peers that read the calendar of the forecast steps (futr_exog), as deepcast's tft and deepar do.
READS_FUTURE = {"tft", "deepar"}
# NeuralForecast's LSTM at deepcast's default size (2 x 64, dropout 0.1), as in accuracy.py;
# the other peers keep their published architectures (e.g. PatchTST 3 x 128, patches of 16).
PEER_ARGS = {"LSTM": {"encoder_n_layers": 2, "encoder_hidden_size": 64, "encoder_dropout": 0.1}}
# Whose windows/s a deepcast model's are divided by in the "throughput vs NF" column.
# A peer's key is the deepcast family's name, but for the transformer's PatchTST.
COUNTERPART = {("transformer" if key == "patchtst" else key): cls for key, cls in PEERS.items()}


@dataclass
class Setup:
    """One data set in one mode: the z-scored frame every system reads, and where it splits."""

    dataset: str
    mode: str
    frame: pd.DataFrame  # z-scored; target first, then this mode's covariates
    target: str
    n_train: int
    n_val: int
    observed: np.ndarray  # per row: False where the target was missing and filled

    @property
    def covariates(self) -> list[str]:
        return list(self.frame.columns[1:])

    @property
    def origins(self) -> np.ndarray:
        """Rows whose window ends there and whose H targets are all test rows."""
        return np.arange(self.n_train + self.n_val - 1, len(self.frame) - HORIZON)

    @property
    def train_windows(self) -> int:
        return self.n_train - LOOKBACK - HORIZON + 1

    def parts(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        end = self.n_train + self.n_val
        f = self.frame
        return f.iloc[: self.n_train], f.iloc[self.n_train : end], f.iloc[end:]


def setups(name: str, args) -> tuple[list[Setup], str]:
    """The data set z-scored on its training part, once per mode, and a note on its rows."""
    task = load_task(name)
    info = dc.datasets.info(name)
    assert task.target == info.target, (task.target, info.target)
    train, val, _ = task.parts(val=VAL, test=TEST)
    # A smoke run keeps the newest training rows: val and test (what is scored) stay whole.
    start = max(0, len(train) - args.limit_train_rows) if args.limit_train_rows else 0
    frame, n_train = task.frame.iloc[start:], len(train) - start
    fit_rows = frame.iloc[:n_train]
    std = fit_rows.std(ddof=0).replace(0.0, 1.0)  # a flag that never fires in training
    z = (frame - fit_rows.mean()) / std
    # The catalogue's covariates that are numbers: one-hot columns of a categorical one are
    # named "wind_dir=NE" etc. and so are left out.
    covariates = [c for c in info.covariates if c in frame.columns]
    found = []
    for mode in args.modes:
        columns = [task.target, *(covariates if mode == "MS" else [])]
        found.append(
            Setup(name, mode, z[columns], task.target, n_train, len(val), task.observed[start:])
        )
    note = f"{task.note}; {n_train}/{len(val)}/{len(frame) - n_train - len(val)} rows"
    return found, note


def score(setup: Setup, forecast: np.ndarray) -> dict:
    rows = setup.origins[:, None] + np.arange(1, HORIZON + 1)
    actual = setup.frame[setup.target].to_numpy()[rows]
    assert forecast.shape == actual.shape, (forecast.shape, actual.shape)
    error = (forecast - actual)[setup.observed[rows]]
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}


# --------------------------------------------------------------------------------- systems
# Each returns (forecasts (n_origins, H) in z-units, info); info's "windows" counts the
# training windows processed (windows x epochs), for the windows/s column.
def seasonal_naive(setup: Setup) -> tuple[np.ndarray, dict]:
    y = setup.frame[setup.target].to_numpy()
    forecast = baselines.seasonal_naive(y, setup.origins, HORIZON, PERIOD)
    return forecast, {"fit_s": 0.0, "params": 0}


def ridge(setup: Setup) -> tuple[np.ndarray, dict]:
    """scikit-learn Ridge (alpha 1) from the flattened window to all H steps."""
    from sklearn.linear_model import Ridge

    values = setup.frame.to_numpy(np.float32)
    view = np.lib.stride_tricks.sliding_window_view(values, LOOKBACK, axis=0)  # (n, F, L)
    flat = lambda ends: view[ends - LOOKBACK + 1].reshape(len(ends), -1)  # noqa: E731
    ends = np.arange(LOOKBACK - 1, setup.n_train - HORIZON)  # every target a training row
    start = time.perf_counter()
    model = Ridge(alpha=1.0).fit(flat(ends), values[ends[:, None] + np.arange(1, HORIZON + 1), 0])
    fit_s = time.perf_counter() - start
    params = model.coef_.size + model.intercept_.size
    info = {"fit_s": fit_s, "epochs": 1, "windows": len(ends), "params": int(params)}
    return model.predict(flat(setup.origins)), info


def deepcast_model(setup: Setup, name: str, seed: int, args) -> tuple[np.ndarray, dict]:
    train, val, test = setup.parts()
    family = models.spec(name)
    settings = dict(
        learning_rate=LEARNING_RATE,
        # the protocol's, whatever a family's own default; a family that only forecasts a
        # distribution (deepar) trains on its own likelihood and is scored on its median
        loss="mse" if "point" in family.outputs else None,
        patience=PATIENCE,
    )
    forecaster = dc.Forecaster(
        setup.target,
        lookback=LOOKBACK,
        horizon=HORIZON,
        model=models.configure(name, args.model_options),
        features=setup.covariates,  # [] in mode S: the target's own history only
        seed=seed,
        **(settings | args.forecaster_args),
    )
    start = time.perf_counter()
    forecaster.fit(
        train, validation=val, epochs=args.epochs, batch_size=args.batch_size, verbose=False
    )
    fit_s = time.perf_counter() - start
    # Families that read known-future inputs add the calendar of the forecast steps (hour and
    # day of week, from the timestamps): never a future value of an observed column.
    read = [c for c in forecaster.feature_names_ if not family.future_inputs or c in setup.frame]
    if read != list(setup.frame.columns):
        raise RuntimeError(
            f"deepcast read {forecaster.feature_names_}, not {list(setup.frame.columns)}"
        )
    # Its own scaler, fitted on z-scored training rows, is the identity up to rounding: the
    # forecasts come back in z-units. Row i forecasts from the last validation row on.
    history = pd.concat([train, val]).iloc[-LOOKBACK:]
    forecast = forecaster.predict(pd.concat([history, test])).to_numpy()[: len(setup.origins)]
    epochs = len(forecaster.history_.epochs)
    weights = forecaster.model.trainable_weights
    return forecast, {
        "fit_s": fit_s,
        "train_s": forecaster.history_.seconds,  # the training loop alone, for reference
        "epochs": epochs,
        "windows": setup.train_windows * epochs,
        "params": int(sum(np.prod(w.shape) for w in weights)),
    }


def peer_class(key: str):
    """NeuralForecast's model class for --peers key `key`, or None if this version lacks it."""
    import neuralforecast.models

    return getattr(neuralforecast.models, PEERS[key], None)


def neuralforecast_model(setup: Setup, key: str, seed: int, args) -> tuple[np.ndarray, dict]:
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE

    cls = peer_class(key)
    n_train, n_val = setup.n_train, setup.n_val
    # NeuralForecast counts steps of `windows_batch_size` windows drawn from the one series:
    # an epoch is the steps that draw every training window once, the last batch partial as
    # in deepcast. Early stopping is checked once per such epoch.
    per_epoch = -(-setup.train_windows // args.batch_size)
    long = nf_long_frame(setup.frame, setup.target, setup.dataset)
    future = {}
    if key in READS_FUTURE:  # hour and day of week of each step, as deepcast's tft/deepar read
        # From the frame's own (local) times, as deepcast derives them: NeuralForecast's "ds"
        # is naive UTC, whose hours would move at each daylight-saving change.
        calendar = calendar_features(setup.frame.index, ("hour", "dow")).reset_index(drop=True)
        long = pd.concat([long, calendar], axis=1)
        future = {"futr_exog_list": list(calendar.columns)}
    # DeepAR forecasts a distribution: it trains on its own likelihood (early stopping on
    # NeuralForecast's default validation loss for it) and is scored on its median.
    losses = {} if key == "deepar" else {"loss": MSE(), "valid_loss": MSE()}
    model = cls(
        h=HORIZON,
        input_size=LOOKBACK,
        hist_exog_list=setup.covariates or None,  # past values only, as deepcast reads them
        **future,
        **losses,
        learning_rate=LEARNING_RATE,
        max_steps=args.epochs * per_epoch,
        val_check_steps=per_epoch,
        early_stop_patience_steps=PATIENCE,  # in validation checks, i.e. epochs
        windows_batch_size=args.batch_size,
        scaler_type="identity",  # the frame is z-scored already, as for every system
        random_seed=seed,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        accelerator="cpu",
        **PEER_ARGS.get(cls.__name__, {}),
    )
    nf = NeuralForecast(models=[model], freq="h")
    start = time.perf_counter()
    nf.fit(df=long.iloc[: n_train + n_val], val_size=n_val)
    fit_s = time.perf_counter() - start
    fitted = nf.models[0]
    steps = len(fitted.train_trajectories)  # one entry per training step
    # The fitted model on every window of the test part, stride 1, without retraining.
    n_test = len(long) - n_train - n_val
    cv = nf.cross_validation(
        df=long, n_windows=None, test_size=n_test, step_size=1, use_fitted=True
    )
    cv = cv.sort_values(["cutoff", "ds"])
    cutoffs = cv["cutoff"].drop_duplicates().to_numpy()
    assert np.array_equal(cutoffs, long["ds"].to_numpy()[setup.origins]), "misaligned windows"
    column = f"{cls.__name__}-median" if key == "deepar" else cls.__name__
    return cv[column].to_numpy().reshape(-1, HORIZON), {
        "fit_s": fit_s,
        "epochs": round(steps / per_epoch, 2),
        "windows": steps * args.batch_size,
        "params": int(sum(p.numel() for p in fitted.parameters() if p.requires_grad)),
    }


# ----------------------------------------------------------------------------------- driver
def run_setup(setup: Setup, args, known: list[str], result: dict) -> None:
    """Every system on `setup`; appends table rows, per-seed runs and skip notes to `result`."""
    print(
        f"\n== {setup.dataset} {setup.mode}: inputs {list(setup.frame.columns)}; "
        f"{setup.train_windows} training windows, {len(setup.origins)} test windows",
        flush=True,
    )

    def skip(system: str, why: str) -> None:
        print(f"   {system:<26} skipped: {why}", flush=True)
        result["skipped"].append(f"{setup.dataset} {setup.mode} {system}: {why}")

    def record(system: str, key: str, run, seeds) -> None:
        runs = []
        for seed in seeds:
            try:
                forecast, info = run(seed)
            except Exception as err:  # a model still being written must not end the run
                skip(system, f"failed with {type(err).__name__}: {err}")
                return
            rate = info["windows"] / info["fit_s"] if info.get("windows") else None
            row = {"dataset": setup.dataset, "mode": setup.mode, "system": system, "key": key}
            runs.append(
                {**row, "seed": seed, **score(setup, forecast), **info, "windows_per_s": rate}
            )
            r = runs[-1]
            label = "" if seed is None else f"seed {seed}"
            print(
                f"   {system:<26} {label:<7} MSE {r['mse']:.4f}  MAE {r['mae']:.4f}  fit "
                f"{r['fit_s']:7.1f}s  epochs {num(r.get('epochs'))}  {num(rate, 0)} windows/s",
                flush=True,
            )
        result["runs"] += runs
        result["rows"].append(seed_mean(runs))

    record("seasonal naive (24)", "snaive", lambda _: seasonal_naive(setup), [None])
    record("ridge (window -> 96)", "ridge", lambda _: ridge(setup), [None])
    for name in args.models:
        if name in known:
            run = lambda seed, n=name: deepcast_model(setup, n, seed, args)  # noqa: E731
            record(f"deepcast {name}", name, run, args.seeds)
        else:
            skip(f"deepcast {name}", f"deepcast.models.names() has no {name!r} (yet): {known}")
    for key in args.peers:
        cls, system = peer_class(key), f"NeuralForecast {PEERS[key]}"
        if cls is None:
            skip(system, "not in this neuralforecast version")
        elif setup.covariates and not cls.EXOGENOUS_HIST:
            skip(system, "reads no historical covariates (EXOGENOUS_HIST False): see mode S")
        else:
            run = lambda seed, k=key: neuralforecast_model(setup, k, seed, args)  # noqa: E731
            record(system, cls.__name__, run, args.seeds)


def seed_mean(runs: list[dict]) -> dict:
    """One system's runs over the seeds: means, and the MSE's sd across seeds."""
    mean = {k: runs[0][k] for k in ("dataset", "mode", "system", "key")}
    for key in ("mse", "mae", "fit_s", "train_s", "epochs", "windows_per_s"):
        values = [r[key] for r in runs if r.get(key) is not None]
        mean[key] = float(np.mean(values)) if values else None
    mean["params"] = int(runs[0]["params"])  # the same architecture for every seed
    mean["mse_sd"] = float(np.std([r["mse"] for r in runs], ddof=1)) if len(runs) > 1 else None
    mean["seeds"] = [r["seed"] for r in runs if r["seed"] is not None]
    return mean


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each deepcast model's windows/s over its NeuralForecast counterpart's, same data/mode."""
    rates = {(r["dataset"], r["mode"], r["key"]): r["windows_per_s"] for r in rows}
    for r in rows:
        peer = COUNTERPART.get(r["key"]) if r["system"].startswith("deepcast") else None
        theirs = rates.get((r["dataset"], r["mode"], peer))
        r["throughput_vs_nf"] = (
            r["windows_per_s"] / theirs if theirs and r["windows_per_s"] else None
        )
    return rows


def markdown(rows: list[dict], skipped: list[str], note: str, args) -> str:
    seeds = ", ".join(map(str, args.seeds))
    pairs = ", ".join(f"{mine} / {theirs}" for mine, theirs in COUNTERPART.items())
    lines = [
        f"Lookback {LOOKBACK}, horizon {HORIZON}, split 60/20/20 ({note}), z-scored on the "
        f"training part; every test window scored. Epoch budget {args.epochs}, early stopping "
        f"patience {PATIENCE} (deepcast restores the best weights, NeuralForecast keeps the "
        f"last), batch {args.batch_size} windows, learning rate {LEARNING_RATE:g}, MSE loss; "
        f"trained systems: mean of seeds {seeds}. windows/s: training windows x epochs / fit s; "
        f"throughput vs NF: over the NeuralForecast counterpart's ({pairs}). Fit s is the "
        "whole fit call (deepcast's includes its baseline check on the validation part; JSON "
        "`train_s`: its training loop alone).",
        "",
        "| data set | mode | system | MSE | MSE sd | MAE | fit s | epochs | windows/s | "
        "throughput vs NF | parameters |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in with_ratios(rows):
        ratio = f"{r['throughput_vs_nf']:.2f}x" if r["throughput_vs_nf"] else "-"
        lines.append(
            f"| {r['dataset']} | {r['mode']} | {r['system']} | {r['mse']:.4f} | "
            f"{num(r['mse_sd'], 4)} | {r['mae']:.4f} | {num(r['fit_s'])} | {num(r['epochs'])} | "
            f"{num(r['windows_per_s'], 0)} | {ratio} | {num(r['params'], 0)} |"
        )
    changed = [f"{k}={v}" for k, v in (args.model_options | args.forecaster_args).items()]
    if changed:
        lines += ["", f"deepcast models run with {', '.join(changed)} (over the protocol's)."]
    if args.limit_train_rows:
        lines += ["", f"Smoke run: training part cut to its last {args.limit_train_rows} rows."]
    lines += ["", *(f"- skipped: {s}" for s in skipped)] if skipped else []
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--datasets", type=name_list({"vic_elec", "beijing_pm25"}), default="vic_elec,beijing_pm25")
    add("--modes", type=name_list({"S", "MS"}), default="S,MS")
    add("--models", type=name_list(), default=MODELS, help="deepcast models (unknown: skipped)")
    add(
        "--peers",
        type=name_list(PEERS),
        default=DEFAULT_PEERS,
        help=f"NeuralForecast, or none (default {DEFAULT_PEERS}; tft and deepar on request)",
    )
    add("--seeds", type=seed_list, default="0,1,2", help="one fit per seed; the table: means")
    add("--epochs", type=int, default=20, help="epoch budget of every trained system")
    add("--batch-size", type=int, default=64, help="training windows per step, every system")
    add("--threads", type=int, default=None, help="torch threads (default: torch's)")
    add(
        "--model-options",
        type=key_values,
        default={},
        help="options of the deepcast models, e.g. stack_types=generic (a model without one "
        "is skipped, saying so)",
    )
    add(
        "--forecaster-args",
        type=key_values,
        default={},
        help="Forecaster arguments of the deepcast models over the protocol's, e.g. "
        "window_norm=true",
    )
    add("--limit-train-rows", type=int, default=None, help="smoke runs: newest training rows")
    add("--out", type=Path, default=RESULTS, help="directory of the result files")
    add("--suffix", default="", help="result file names: long_horizon<suffix>_<dataset>.md")
    args = parser.parse_args()
    fixed = sorted(set(args.forecaster_args) & PROTOCOL_ARGS)
    if fixed:
        parser.error(f"--forecaster-args cannot set {', '.join(fixed)}: the benchmark sets these")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("lightning.pytorch", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "GPU available: False" per fit
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    known = models.names()

    tables = []
    for name in args.datasets:
        found, note = setups(name, args)
        result = {"rows": [], "runs": [], "skipped": []}
        for setup in found:
            run_setup(setup, args, known, result)
            table = markdown(result["rows"], result["skipped"], note, args)
            settings = vars(args) | {"out": str(args.out), "lookback": LOOKBACK, "horizon": HORIZON}
            payload = {
                "settings": settings,
                "note": note,
                "rows": json_safe(with_ratios(result["rows"])),
                "runs": json_safe(result["runs"]),
                "skipped": result["skipped"],
            }
            write_results(args.out, f"long_horizon{args.suffix}_{name}", table, payload)
        tables.append(table)
        print(f"wrote {args.out}/long_horizon{args.suffix}_{name}.md, .json", flush=True)
    print("\n" + "\n".join(tables))


if __name__ == "__main__":
    main()
