"""Tuning engines side by side: the same search space and the same budget of training epochs.

vic_elec (hourly mean of the half-hourly demand, temperature and holiday; lookback 168,
horizon 24), split 70/15/15. One model family, DLinear (an LSTM over 168 steps trains at
~36 s an epoch on this shared 2-core machine; DLinear at ~5 s, so every engine gets a
real budget), and one search space: learning rate (log), batch size, moving-average window
and whether covariates are used. Every engine gets `--budget` training epochs in total
(at most `--epochs` per trial, early stopping with patience 3 inside each):

  keras-random / keras-bayesian   budget / epochs trials
  keras-hyperband                 one Hyperband iteration (max_epochs = epochs) capped to fit
  optuna-tpe (median pruning)     trials until the epochs trained reach the budget (the
                                  search is resumed one trial at a time from its SQLite file)
  ray-asha                        enough samples to spend the budget (ASHA rungs 1, 3, 9, ...)
  ray-pbt                         a population of 4, budget / 4 epochs each

Run with OMP_NUM_THREADS=1: KerasTuner and Optuna train one trial at a time on one thread;
Ray runs two trials at a time, one CPU and one thread each. Reported per engine: epochs
trained, wall time, the best validation loss against wall time and against epochs, the epochs
it needed to reach random search's final best validation loss, and the hold-out MAE of its
chosen configuration refitted on train (early stopping on val). Goal: the best engine reaches
random search's final validation loss in at most half of random search's epochs, with a
hold-out MAE no worse.

    .venv/bin/python benchmarks/tuning_engines.py [--budget 36] [--epochs 6] [--seeds 0,1,2,3,4]
        [--engines ...] [--baseline-start]
    .venv/bin/python benchmarks/tuning_engines.py --backtest 5   # local vs two-node Ray cluster

`--backtest N` instead runs an N-fold backtest of DLinear on the same data twice, locally and as
Ray tasks on a two-node cluster started on this machine (`ray start`, one CPU per node), checks
that the per-fold metrics are identical and reports both wall times
(results/tuning_engines_backtest.{json,md}).

Writes benchmarks/results/tuning_engines.{json,md,png}. Wall times on a machine shared with
other jobs are indicative only; epochs are the fair yardstick.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, json_safe, seed_list, vic_elec_task
from matplotlib.figure import Figure

import deepcast as dc
from deepcast import _atomic, tuning
from deepcast.tuning.report import best_over_time

ENGINES = (
    "keras-random",
    "keras-bayesian",
    "keras-hyperband",
    "optuna-tpe",
    "ray-asha",
    "ray-pbt",
)
SPACE = {
    "lookback": 168,
    "learning_rate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "batch_size": [32, 64, 128, 256],
    "moving_avg": [13, 25, 49],
    "covariates": [True, False],
}
# No ridge start: started at the ridge's forecast, every configuration of this space lands
# within 0.5% of the same validation loss (0.1039-0.1046 over all six engines, an earlier run
# with --baseline-start), so there is nothing for an engine to find. From scratch, the learning
# rate and batch size decide how far 6 epochs get, which is what a search is for.
FIXED = {"lookback": 168, "horizon": 24, "model": "dlinear", "patience": 3}


def run_engine(name: str, train, val, args, out: Path, seed: int):
    """One search with `name`'s engine under the epoch budget; the TuningResult."""
    common = {
        "target": "demand",
        "forecaster_args": {**FIXED, "baseline_start": args.baseline_start},
        "narrow": SPACE,
        "seed": seed,
        "overwrite": True,
        "directory": out / name,
        "epochs": args.epochs,
    }
    per_trial = args.budget // args.epochs
    if name in ("keras-random", "keras-bayesian"):
        return tuning.tune(train, val, algorithm=name, max_trials=per_trial, **common)
    if name == "keras-hyperband":
        from deepcast.tuning.keras_tuner_engine import hyperband_trials

        # Hyperband's own plan spends more than the budget; its first trials fit.
        trials = min(hyperband_trials(args.epochs), 2 * per_trial)
        return tuning.tune(train, val, algorithm=name, max_trials=trials, **common)
    if name == "optuna-tpe":
        trials = 1
        while True:  # one trial more per call: the study resumes from optuna.db
            result = tuning.tune(
                train,
                val,
                algorithm=name,
                max_trials=trials,
                **{**common, "overwrite": trials == 1},
            )
            if _epochs(result) >= args.budget:
                return result
            trials += 1
    if name == "ray-asha":
        # Async successive halving with rungs 1, 3, 9 (reduction 3): ~2 epochs per trial.
        return tuning.tune(train, val, algorithm=name, max_trials=args.budget // 2, **common)
    if name == "ray-pbt":
        population = 4
        return tuning.tune(
            train,
            val,
            algorithm=name,
            max_trials=population,
            **{**common, "epochs": args.budget // population},
        )
    raise ValueError(name)


def _epochs(result) -> int:
    return sum(t.get("epochs_trained") or 0 for t in result.trials)


def curve(result) -> list[tuple[float, int, float]]:
    """(seconds, epochs trained so far, best validation loss so far) at every trial's end."""
    rows, best, used = [], math.inf, 0
    for t in sorted(result.trials, key=lambda t: t.get("finished_at") or 0):
        used += t.get("epochs_trained") or 0
        if t["status"] == "COMPLETED" and t["score"] is not None:
            best = min(best, t["score"])
        rows.append((t.get("finished_at") or 0.0, used, best))
    return rows


def epochs_to_reach(points, target: float) -> int | None:
    return next((used for _, used, best in points if best <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=36, help="training epochs per engine")
    parser.add_argument("--epochs", type=int, default=6, help="at most per trial")
    parser.add_argument(
        "--seeds", type=seed_list, default=[0, 1, 2, 3, 4], help="one whole comparison each"
    )
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark-tuning-engines"))
    parser.add_argument("--backtest", type=int, default=0, metavar="FOLDS")
    parser.add_argument(
        "--baseline-start", action="store_true", help="start every trial at the ridge forecast"
    )
    parser.add_argument("--suffix", default="", help="result file names: tuning_engines<suffix>")
    args = parser.parse_args()
    if args.backtest:
        backtest_on_cluster(args.backtest, args.seeds[0])
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("deepcast.forecaster", "deepcast.tuning", "ray", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    task = vic_elec_task()
    train, val, test = task.parts()
    print(f"data: vic_elec ({task.note}), {len(train)}/{len(val)}/{len(test)} rows")
    by_seed = {}
    for seed in args.seeds:
        by_seed[seed] = compare_engines(train, val, test, args, seed)
        report = aggregate(by_seed)
        payload = {
            "data": {
                "name": "vic_elec",
                "note": task.note,
                "rows": [len(train), len(val), len(test)],
            },
            "settings": {
                **vars(args),
                "seeds": list(by_seed),  # the seeds measured so far
                "out": str(args.out),
                "space": SPACE,
                "fixed": FIXED,
            },
            "engines": report["engines"],
            "goal": report["goal"],
            "seeds": {str(k): v for k, v in by_seed.items()},
        }
        # Written after every seed, so a long run that is stopped keeps what it measured.
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"tuning_engines{args.suffix}"
        _atomic.write_json(f"{stem}.json", json_safe(json.loads(json.dumps(payload))))
        _atomic.write_text(f"{stem}.md", markdown(by_seed, report, args))
        _atomic.save_figure(f"{stem}.png", figure(by_seed[args.seeds[0]]))
    print(markdown(by_seed, report, args))


def compare_engines(train, val, test, args, seed: int) -> dict:
    """Every engine once with `seed`; {engine: its row}, with epochs to random's final."""
    summary = {}
    for name in args.engines:
        start = time.perf_counter()
        result = run_engine(name, train, val, args, args.out / f"seed{seed}", seed)
        wall = time.perf_counter() - start
        best = result.best
        refit = dc.Forecaster(**result.best_forecaster_args())
        refit.fit(train, validation=val, **result.best_fit_args(), verbose=False)
        scores = refit.evaluate(test)
        summary[name] = {
            "engine": result.engine,
            "algorithm": result.algorithm,
            "trials": len(result.trials),
            "completed": len(result.completed),
            "pruned": sum(t["status"] == "PRUNED" for t in result.trials),
            "epochs_trained": _epochs(result),
            "wall_seconds": round(wall, 1),
            "best_val_loss": best["score"],
            "best_hyperparameters": best["hyperparameters"],
            "holdout_mae": scores["mae"],
            "holdout_rmse": scores["rmse"],
            "curve": curve(result),
            "trials_run": [
                {k: t.get(k) for k in ("finished_at", "status", "score", "epochs_trained")}
                for t in result.trials
            ],
        }
        print(
            f"seed {seed} {name:<16} {summary[name]['trials']:>3} trials  "
            f"{summary[name]['epochs_trained']:>3} epochs  {wall:7.1f}s  "
            f"best val_loss {best['score']:.4f}  hold-out MAE {scores['mae']:.2f}",
            flush=True,
        )
    reference = summary.get("keras-random")
    if reference is not None:
        for row in summary.values():
            row["epochs_to_random_final"] = epochs_to_reach(
                row["curve"], reference["best_val_loss"]
            )
            row["mae_vs_random"] = row["holdout_mae"] / reference["holdout_mae"] - 1
    return summary


def aggregate(by_seed: dict) -> dict:
    """Per engine over the seeds: median epochs to random's final loss (not reached counts
    as never), mean best loss and hold-out MAE; and the goal on those."""
    engines = {}
    for name in ENGINES:
        rows = [summary[name] for summary in by_seed.values() if name in summary]
        if not rows:
            continue
        reach = [r.get("epochs_to_random_final") for r in rows]
        median_reach = float(np.median([math.inf if e is None else e for e in reach]))
        engines[name] = {
            "seeds": len(rows),
            "epochs_trained": float(np.mean([r["epochs_trained"] for r in rows])),
            "best_val_loss": float(np.mean([r["best_val_loss"] for r in rows])),
            "median_epochs_to_random_final": median_reach,
            "reached": sum(e is not None for e in reach),
            "holdout_mae": float(np.mean([r["holdout_mae"] for r in rows])),
            "wall_seconds": float(np.mean([r["wall_seconds"] for r in rows])),
        }
    return {"engines": engines, "goal": _goal(engines)}


def _goal(engines: dict) -> dict:
    """Did some engine reach random search's final loss in half its epochs (median over the
    seeds), with a mean hold-out MAE no worse?"""
    reference = engines.get("keras-random")
    if reference is None:
        return {"met": None}
    half = reference["epochs_trained"] / 2
    winners = [
        name
        for name, row in engines.items()
        if name != "keras-random"
        and row["median_epochs_to_random_final"] <= half
        and row["holdout_mae"] <= reference["holdout_mae"]
    ]
    return {"met": bool(winners), "engines": winners, "half_of_random_epochs": half}


def markdown(by_seed: dict, report: dict, args) -> str:
    seeds = list(by_seed)
    engines, goal = report["engines"], report["goal"]
    start = "started at the ridge" if args.baseline_start else "from scratch, no ridge start"
    lines = [
        f"# Tuning engines on vic_elec (DLinear, lookback 168, horizon 24; budget {args.budget} "
        f"epochs, at most {args.epochs} per trial; {start}; seeds "
        f"{', '.join(map(str, seeds))})",
        "",
        "Mean over the seeds; epochs to random's final: the median over the seeds of the "
        "epochs an engine spent before its best validation loss reached keras-random's final "
        "best of the same seed ('-' where it did not on most seeds).",
        "",
        "| engine | epochs | wall s | best val loss | epochs to random's final (median) | "
        "seeds reached | hold-out MAE | vs random |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    random_mae = engines.get("keras-random", {}).get("holdout_mae")
    for name, row in engines.items():
        reach = row["median_epochs_to_random_final"]
        versus = "-" if random_mae is None else f"{row['holdout_mae'] / random_mae - 1:+.1%}"
        lines.append(
            f"| {name} | {row['epochs_trained']:.0f} | {row['wall_seconds']:.0f} | "
            f"{row['best_val_loss']:.4f} | {'-' if math.isinf(reach) else f'{reach:.0f}'} | "
            f"{row['reached']}/{row['seeds']} | {row['holdout_mae']:.1f} | {versus} |"
        )
    lines += [
        "",
        "Per seed: best validation loss / epochs to random's final / hold-out MAE",
        "",
        "| engine | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for name in engines:
        cells = []
        for seed in seeds:
            row = by_seed[seed].get(name)
            if row is None:
                cells.append("")
                continue
            reach = row.get("epochs_to_random_final")
            cells.append(
                f"{row['best_val_loss']:.4f} / {'-' if reach is None else reach} / "
                f"{row['holdout_mae']:.1f}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    verdict = "met by " + ", ".join(goal["engines"]) if goal.get("met") else "not met"
    lines += [
        "",
        "Goal (an engine reaches random search's final validation loss in at most half of its "
        f"epochs, hold-out MAE no worse): {verdict}.",
        "Wall times were measured on a 2-core machine shared with other jobs; Ray runs two "
        "trials at once, the others one.",
    ]
    return "\n".join(lines) + "\n"


def figure(summary: dict) -> Figure:
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    by_time, by_epochs = fig.subplots(1, 2)
    for name, row in summary.items():
        best_over_time(by_time, row["trials_run"], label=name)
        points = summary[name]["curve"]
        shown = [(used, best) for _, used, best in points if math.isfinite(best)]
        if shown:
            by_epochs.step(*zip(*shown), where="post", label=name)
    by_epochs.set_title("Best validation loss against epochs trained")
    by_epochs.set_xlabel("training epochs spent (all trials)")
    by_epochs.set_ylabel("best val_loss (scaled)")
    by_epochs.grid(True, alpha=0.3)
    for ax in (by_time, by_epochs):
        ax.legend(fontsize="small")
        values = [b for row in summary.values() for _, _, b in row["curve"] if math.isfinite(b)]
        if values:
            low, high = min(values), np.percentile(values, 90)
            ax.set_ylim(low - 0.05 * (high - low), high + 0.1 * (high - low))
    fig.suptitle("Tuning engines, same search space and epoch budget (vic_elec, DLinear)")
    return fig


def backtest_on_cluster(folds: int, seed: int) -> None:
    """The same backtest locally and on a two-node Ray cluster: metrics and wall times."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import tempfile

    import ray

    from deepcast.evaluation.backtest import backtest

    logging.basicConfig(level=logging.WARNING)
    task = vic_elec_task()
    forecaster = dc.Forecaster(
        target="demand", lookback=168, horizon=24, model="dlinear", seed=seed, patience=3
    )
    options = {"folds": folds, "epochs": 10, "batch_size": 128, "verbose": False}
    start = time.perf_counter()
    local = backtest(forecaster, task.frame, **options)
    local_seconds = time.perf_counter() - start
    print(f"local: {local_seconds:.1f}s", flush=True)

    os.environ["RAY_AUTH_MODE"] = "disabled"  # a loopback cluster of this machine only
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="dcray", dir="/tmp")
    executable = str(Path(sys.executable).with_name("ray"))
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    nodes = []
    try:
        for extra in (
            ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"],
            [f"--address=127.0.0.1:{port}"],
        ):
            nodes.append(
                subprocess.Popen(
                    [executable, "start", *extra, *common],
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(15)
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            time.sleep(0.5)
        start = time.perf_counter()
        remote = backtest(forecaster, task.frame, engine="ray", **options)
        remote_seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
        for node in nodes:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
    identical = all(a["metrics"] == b["metrics"] for a, b in zip(local.folds, remote.folds))
    rows = [
        {
            "fold": a["fold"],
            "test_start": a["test_start"],
            "mae_local": a["metrics"]["mae"],
            "mae_ray": b["metrics"]["mae"],
            "node": b.get("node", "")[:8],
        }
        for a, b in zip(local.folds, remote.folds)
    ]
    result = {
        "folds": rows,
        "identical_metrics": identical,
        "local_seconds": round(local_seconds, 1),
        "ray_seconds": round(remote_seconds, 1),
        "nodes_used": len({r["node"] for r in rows}),
        "settings": {**options, "model": "dlinear", "lookback": 168, "horizon": 24},
    }
    _atomic.write_json(RESULTS / "tuning_engines_backtest.json", result)
    lines = [
        f"# {folds}-fold backtest of DLinear on vic_elec: local vs a two-node Ray cluster",
        "",
        "| fold | test from | MAE local | MAE on Ray | node |",
        "|---|---|---|---|---|",
        *(
            f"| {r['fold']} | {r['test_start'][:10]} | {r['mae_local']:.3f} | "
            f"{r['mae_ray']:.3f} | {r['node']} |"
            for r in rows
        ),
        "",
        f"Identical per-fold metrics: {identical}. Wall time: local {local_seconds:.0f} s, "
        f"two-node cluster {remote_seconds:.0f} s (one CPU per node, both on this 2-core "
        "machine, shared with other jobs; the cluster's time includes each worker importing "
        "Keras and torch).",
    ]
    _atomic.write_text(RESULTS / "tuning_engines_backtest.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
