"""Does the TFT's past-variable selection find the planted drivers?

On the synthetic series (y driven by x1 and x2, data/synthetic.py) plus a column of pure
noise, a TFT is fitted per seed (data and model seed alike) without the baseline start (so its
weights describe the series, not a start's residual), and `Forecaster.interpret` reports the
mean selection weight of every past input. Goal (issue "Model families II"): x1 and x2 above
the noise column on every seed. The hold-out RMSE is printed next to the ridge's, so the
weights are read off a model that fits.

    .venv/bin/python benchmarks/tft_selection.py                 # seeds 0,1,2
    .venv/bin/python benchmarks/tft_selection.py --seeds 0 --epochs 5

Writes benchmarks/results/tft_selection.md and .json (atomically) and prints the table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, seed_list, write_results

import deepcast as dc

INPUTS = ("y", "x1", "x2", "noise")


def run(seed: int, args) -> dict:
    df = dc.datasets.synthetic(seed=seed, n_steps=args.rows)
    df["noise"] = np.random.default_rng(1000 + seed).standard_normal(len(df))
    train, val, test = dc.split(df)
    f = dc.Forecaster(
        "y",
        lookback=args.lookback,
        horizon=args.horizon,
        model=dc.models.TFT(hidden=args.hidden, heads=4),
        learning_rate=args.learning_rate,
        baseline_start=False,
        seed=seed,
    )
    start = time.perf_counter()
    f.fit(train, validation=val, epochs=args.epochs, batch_size=64, verbose=False)
    fit_s = time.perf_counter() - start
    history = df.iloc[: len(train) + len(val)]
    weights = f.interpret(test).encoder_variables
    scores = f.evaluate(test, history=history)
    ranked = sorted(weights, key=weights.get, reverse=True)
    row = {
        "seed": seed,
        **{f"w_{name}": weights[name] for name in INPUTS},
        "rank_x1": ranked.index("x1") + 1,
        "rank_x2": ranked.index("x2") + 1,
        "rank_noise": ranked.index("noise") + 1,
        "drivers_above_noise": min(weights["x1"], weights["x2"]) > weights["noise"],
        "rmse": scores["rmse"],
        "ridge_rmse": scores["baselines"]["linear"]["rmse"],
        "epochs": len(f.history_.epochs),
        "fit_s": fit_s,
        "loss": f.training_loss,  # the TFT's own (MAE since it won the accuracy runs)
    }
    print(
        f"seed {seed}: x1 {weights['x1']:.3f}  x2 {weights['x2']:.3f}  noise "
        f"{weights['noise']:.3f}  y {weights['y']:.3f}  (of {len(weights)} inputs)  RMSE "
        f"{row['rmse']:.3f} vs ridge {row['ridge_rmse']:.3f}  {row['epochs']} epochs "
        f"{fit_s:.0f}s",
        flush=True,
    )
    return row


def markdown(rows: list[dict], args) -> str:
    lines = [
        f"TFT (hidden {args.hidden}, heads 4, dropout 0.1) on synthetic ({args.rows} rows) plus "
        f"a pure-noise column; lookback {args.lookback}, horizon {args.horizon}, up to "
        f"{args.epochs} epochs (early stopping), learning rate {args.learning_rate}, "
        f"{rows[0]['loss'].upper()} loss, no baseline start. Weights: mean past-variable "
        "selection weight (all inputs sum to 1, calendar columns included); rank among all "
        "inputs.",
        "",
        "| seed | x1 | x2 | noise | y | rank x1 | rank x2 | rank noise | drivers above noise "
        "| RMSE | ridge RMSE | epochs | fit s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['w_x1']:.3f} | {r['w_x2']:.3f} | {r['w_noise']:.3f} | "
            f"{r['w_y']:.3f} | {r['rank_x1']} | {r['rank_x2']} | {r['rank_noise']} | "
            f"{'yes' if r['drivers_above_noise'] else 'no'} | {r['rmse']:.3f} | "
            f"{r['ridge_rmse']:.3f} | {r['epochs']} | {r['fit_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--lookback", type=int, default=24)
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [run(seed, args) for seed in args.seeds]
    table = markdown(rows, args)
    print("\n" + table)
    write_results(
        args.out, "tft_selection", table, {"args": vars(args) | {"out": None}, "rows": rows}
    )


if __name__ == "__main__":
    main()
