"""Why IG, SHAP and occlusion give precision@2 = 0.5 on the recurrent models: a sweep.

On the planted synthetic data (`synthetic(n_steps=3000, seed=0)`, lookback 24, 30 epochs, no
baseline start, as in explain_faithfulness.py), `lstm` and `bilstm` are fitted at three sizes,
two learning rates, with and without window normalisation; for each fit: hold-out skill over
seasonal naive, precision@2 of the planted cells for IG, SHAP and occlusion, and IG's three
most important (feature, lag) cells. A well-fitted recurrent model reads y's own recent lags
(y's noise is AR(1), coefficient 0.7), which the planted truth, covariate cells only, omits.

    cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python explain_recurrent_sweep.py

Writes benchmarks/results/explain_recurrent_sweep.{md,json}.
"""

from __future__ import annotations

import argparse
import itertools
import time

from _common import RESULTS, name_list, write_results

import deepcast as dc
from deepcast import models

SIZES = [(32, 1), (64, 1), (64, 2)]  # (units, layers)
LEARNING_RATES = [3e-3, 1e-2]
METHODS = ["integrated_gradients", "shap", "occlusion"]
OPTIONS = {"integrated_gradients": {"steps": 32}, "shap": {"samples": 64}}


def sweep(name: str, epochs: int, data, truth) -> list[dict]:
    train, val, test = data
    rows = []
    for (units, layers), lr, norm in itertools.product(SIZES, LEARNING_RATES, [False, True]):
        f = dc.Forecaster(
            "y",
            lookback=24,
            model=models.spec(name)(units=units, layers=layers, dropout=0.0),
            baseline_start=False,
            window_norm=norm,
            learning_rate=lr,
            seed=0,
        )
        started = time.perf_counter()
        f.fit(train, validation=val, epochs=epochs, verbose=False)
        seconds = time.perf_counter() - started
        scores = f.evaluate(test)
        skill = 1 - scores["mae"] / scores["baselines"]["seasonal_naive"]["mae"]
        c = dc.explain.compare(
            f, test, methods=METHODS, truth=truth, max_windows=100, options=OPTIONS
        )
        top = c.explanations["integrated_gradients"].top_cells(3)
        rows.append(
            {
                "model": name,
                "units": units,
                "layers": layers,
                "learning_rate": lr,
                "window_norm": norm,
                "skill": skill,
                "fit_seconds": seconds,
                **{f"precision_{m}": float(c.table.loc[m, "precision_at_k"]) for m in METHODS},
                "ig_top_cells": " ".join(f"{f}@{int(lag)}" for f, lag in zip(top.feature, top.lag)),
            }
        )
        print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict], epochs: int) -> str:
    lines = [
        f"# Recurrent models on the planted data: {epochs} epochs, lookback 24, no baseline start",
        "",
        "| model | units x layers | learning rate | window norm | skill | precision@2 IG / SHAP "
        "/ occlusion | IG top 3 cells |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['units']} x {r['layers']} | {r['learning_rate']:g} | "
            f"{'yes' if r['window_norm'] else 'no'} | {r['skill']:.1%} | "
            + " / ".join(f"{r[f'precision_{m}']:.1f}" for m in METHODS)
            + f" | {r['ig_top_cells']} |"
        )
    y_in_top_two = sum(
        any(cell.startswith("y@") for cell in r["ig_top_cells"].split()[:2]) for r in rows
    )
    lines += [
        "",
        f"Fits with a y lag among IG's two most important cells: {y_in_top_two} of {len(rows)}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=name_list(["lstm", "bilstm"]), default=["lstm", "bilstm"])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    df, truth = dc.datasets.synthetic(n_steps=3000, seed=0, return_truth=True)
    data = dc.split(df)
    rows = []
    for name in args.models:
        rows += sweep(name, args.epochs, data, truth)
        write_results(
            RESULTS,
            "explain_recurrent_sweep",
            markdown(rows, args.epochs),
            {"settings": vars(args), "fits": rows},
        )
    print(markdown(rows, args.epochs))


if __name__ == "__main__":
    main()
