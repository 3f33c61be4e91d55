"""What a user meets: `dc.Forecaster` with its defaults (and `model="auto"`) on every bundled
real data set, next to the ridge, naive and seasonal-naive baselines on the same test targets.

Protocols: the sub-daily sets (vic_elec hourly, beijing_pm25) at lookback 168 / horizon 24 and
at lookback 336 / horizon 96; aapl_stock (trading days) at the CLI's lookback 48 / horizon 1.
Chronological 70/15/15 split; the test part is scored with train + validation as history, so
every test row is a target. Variants compare one setting against the defaults side by side:

    .venv/bin/python benchmarks/defaults.py                       # defaults and auto, seed 0
    .venv/bin/python benchmarks/defaults.py --variants baseline_start=false --seeds 0,1,2
    .venv/bin/python benchmarks/defaults.py --sets aapl_stock --epochs 50
    .venv/bin/python benchmarks/defaults.py --no-defaults --no-auto --variants model=nbeats
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
from _common import RESULTS, key_values, load_task, name_list, seed_list, write_results

import deepcast as dc
from deepcast.selection import select_model

SETS = {
    "vic_elec/168-24": ("vic_elec", 168, 24),
    "vic_elec/336-96": ("vic_elec", 336, 96),
    "beijing_pm25/168-24": ("beijing_pm25", 168, 24),
    "beijing_pm25/336-96": ("beijing_pm25", 336, 96),
    "aapl_stock/48-1": ("aapl_stock", 48, 1),
}


def frame_of(name: str) -> tuple[pd.DataFrame, str]:
    if name == "aapl_stock":
        return dc.datasets.load(name), dc.datasets.info(name).target
    task = load_task(name)
    return task.frame, task.target


def score(forecaster, parts) -> dict:
    train, val, test = parts
    metrics = forecaster.evaluate(test, history=pd.concat([train, val]))
    baselines = metrics["baselines"]
    seasonal = min(
        (k for k in baselines if k.startswith("seasonal_naive")), key=lambda k: baselines[k]["mae"]
    )
    return {
        "mae": metrics["mae"],
        "rmse": metrics["rmse"],
        "ridge_mae": baselines["linear"]["mae"],
        "ridge_rmse": baselines["linear"]["rmse"],
        "naive_mae": baselines["naive"]["mae"],
        "seasonal_mae": baselines[seasonal]["mae"],
        "best_epoch": forecaster.history_.best_epoch,
        "epochs_trained": len(forecaster.history_.epochs),
        "lost_on_validation": forecaster.validation_check_.lost,
    }


def run_one(system: str, options: dict, parts, target, lookback, horizon, seed, epochs, budget):
    train, val, _ = parts
    args = {"lookback": lookback, "horizon": horizon, "seed": seed, **options}
    start = time.perf_counter()
    if system == "auto":
        selection = select_model(
            train, val, target=target, forecaster_args=args, epochs=epochs, budget_seconds=budget
        )
        forecaster, chosen = selection.forecaster, selection.chosen
    else:
        forecaster = dc.Forecaster(target=target, **args).fit(
            train, validation=val, epochs=epochs, verbose=False
        )
        chosen = forecaster.model_name
    row = {"system": system, "chosen": chosen, "seed": seed, **score(forecaster, parts)}
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def table(rows: list[dict]) -> str:
    head = (
        "| set | system | model | seeds | MAE | ridge MAE | naive MAE | best seasonal MAE "
        "| MAE / ridge | s |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    frame = pd.DataFrame(rows)
    for (name, system), group in frame.groupby(["set", "system"], sort=False):
        mean = group.mean(numeric_only=True)
        lines.append(
            f"| {name} | {system} | {','.join(sorted(set(group['chosen'])))} | {len(group)} "
            f"| {mean['mae']:.4g} | {mean['ridge_mae']:.4g} | {mean['naive_mae']:.4g} "
            f"| {mean['seasonal_mae']:.4g} | {mean['mae'] / mean['ridge_mae']:.3f} "
            f"| {mean['seconds']:.0f} |"
        )
    return "\n".join(lines)


def variant(text: str) -> tuple[str, dict]:
    """ "baseline_start=false+model=nlinear" -> (text, {"baseline_start": False, ...})"""
    return text, key_values(text, "+")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=name_list(SETS), default=list(SETS))
    parser.add_argument("--seeds", type=seed_list, default=[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--auto-budget", type=float, default=900.0)
    parser.add_argument(
        "--variants",
        type=lambda t: [variant(v) for v in t.split(",") if v],
        default=[],
        help="extra systems: KEY=VALUE[+KEY=VALUE], comma-separated (baseline_start=false)",
    )
    parser.add_argument("--no-auto", action="store_true")
    parser.add_argument(
        "--no-defaults", action="store_true", help="only the variants (and auto, unless --no-auto)"
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    systems = (
        ([] if args.no_defaults else [("defaults", {})])
        + args.variants
        + ([] if args.no_auto else [("auto", {})])
    )
    rows = []
    for name in args.sets:
        data, lookback, horizon = SETS[name]
        frame, target = frame_of(data)
        parts = dc.split(frame, val=0.15, test=0.15)
        for system, options in systems:
            for seed in args.seeds:
                row = run_one(
                    "auto" if system == "auto" else system,
                    options,
                    parts,
                    target,
                    lookback,
                    horizon,
                    seed,
                    args.epochs,
                    args.auto_budget,
                )
                rows.append({"set": name, **row})
                print(f"{name} {system} seed {seed}: {row}", flush=True)
        text = table(rows)
        print(text, flush=True)
        write_results(
            Path(args.out),
            "defaults",
            text,
            {"epochs": args.epochs, "rows": rows},
        )


if __name__ == "__main__":
    main()
