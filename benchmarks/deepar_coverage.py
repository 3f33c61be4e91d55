"""DeepAR's interval coverage on the synthetic data: the issue's goal is that its 90% intervals
cover 87-93% of hold-out points.

Protocol: `dc.datasets.synthetic(seed=0)` (4,000 hourly rows, planted drivers x1, x2), a
chronological 70/15/15 split, lookback 48, `model="deepar"` with its default options (units
96, layers 2, dropout 0.1) and each head of --heads (Student t, deepar's default, and
Gaussian), up to --epochs epochs with early stopping on the validation part (patience 5),
the head's spread then recalibrated on the validation part (spread_calibration.py).
Every test row is forecast (train + validation as history) and scored by
`f.evaluate(test, history=..., levels=[80, 90])`: the sample-path intervals (method "samples",
200 ancestral paths per origin, the median as the point), coverage as a fraction of every
(origin, step) target, CRPS of the sample paths. Beside them, on the same fit: the per-step
quantiles of the head's distribution ("distribution") and split conformal ("conformal",
calibrated on the validation windows), and the seasonal naive with empirical-quantile
intervals.

    cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python deepar_coverage.py
    OMP_NUM_THREADS=1 ../.venv/bin/python deepar_coverage.py --seeds 0 --epochs 2 --out /tmp/d

Writes benchmarks/results/deepar_coverage.md and .json (`--stem` names them otherwise).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from _common import RESULTS, json_safe, seed_list, write_results

import deepcast as dc

LEVELS = (80, 90)
GOAL = (0.87, 0.93)


def run(
    horizon: int, seed: int, epochs: int, lookback: int, loss: str, units: int | None
) -> list[dict]:
    df = dc.datasets.synthetic(seed=0)
    train, val, test = dc.split(df, val=0.15, test=0.15)
    f = dc.Forecaster(
        "y", lookback=lookback, horizon=horizon, model="deepar", loss=loss, seed=seed, units=units
    )
    start = time.perf_counter()
    f.fit(train, validation=val, epochs=epochs, verbose=False)
    seconds = time.perf_counter() - start
    history = dc.datasets.synthetic(seed=0).loc[: val.index[-1]]
    rows = []
    for method in ("samples", "distribution", "conformal"):
        start = time.perf_counter()
        r = f.evaluate(test, history=history, levels=list(LEVELS), method=method)
        rows.append(
            {
                "horizon": horizon,
                "head": loss,
                "units": f.model_config_.config["units"],
                "seed": seed,
                "method": method,
                "coverage_80": r["coverage_80"],
                "coverage_90": r["coverage_90"],
                "width_90": r["width_90"],
                "crps": r["crps"],
                "rmse": r["rmse"],
                "epochs": len(f.history_.epochs),
                "best_epoch": f.history_.best_epoch,
                "fit_seconds": seconds,
                "score_seconds": time.perf_counter() - start,
            }
        )
    snaive = r["intervals"]["baselines"]["seasonal_naive"]
    rows.append(
        {
            "horizon": horizon,
            "head": "",
            "units": None,
            "seed": seed,
            "method": "seasonal naive (empirical quantiles)",
            "coverage_80": snaive["coverage_80"],
            "coverage_90": snaive["coverage_90"],
            "width_90": snaive["width_90"],
            "crps": snaive.get("crps"),
            "rmse": r["baselines"]["seasonal_naive"]["rmse"],
        }
    )
    return rows


def table(rows: list[dict], command: str) -> str:
    lines = [
        "# DeepAR interval coverage on the synthetic data",
        "",
        f"Goal: 90% intervals cover {GOAL[0]:.0%}-{GOAL[1]:.0%} of hold-out points. "
        "Method `samples` is DeepAR's own (ancestral sample paths; its CRPS is that of the "
        "paths, the others' is from the interval quantiles, so compare CRPS within a method).",
        "",
        f"    {command}",
        "",
        "| H | head | units | seed | method | coverage 80 | coverage 90 | width 90 | CRPS | RMSE "
        "| epochs (best) | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v, d=3):
        return "" if v is None else f"{v:.{d}f}"

    for r in rows:
        epochs = f"{r['epochs']} ({r['best_epoch']})" if "epochs" in r else ""
        lines.append(
            f"| {r['horizon']} | {r['head']} | {r['units'] or ''} | {r['seed']} | {r['method']} | "
            f"{f(r['coverage_80'])} | "
            f"{f(r['coverage_90'])} | {f(r['width_90'])} | {f(r['crps'])} | {f(r['rmse'])} | "
            f"{epochs} | {f(r.get('fit_seconds'), 0)} |"
        )
    lines.append("")
    for head in dict.fromkeys(r["head"] for r in rows if r["method"] == "samples"):
        own = [r["coverage_90"] for r in rows if r["method"] == "samples" and r["head"] == head]
        met = sum(GOAL[0] <= c <= GOAL[1] for c in own)
        lines.append(
            f"- {head} head, sample-path 90% coverage: {', '.join(f'{c:.3f}' for c in own)} "
            f"(mean {sum(own) / len(own):.3f}); within the goal on {met} of {len(own)} runs."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=[0, 1, 2])
    parser.add_argument("--horizons", default="1", help="comma-separated, e.g. 1,24")
    parser.add_argument("--heads", default="student_t,gaussian", help="deepar's losses to run")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--units", type=int, default=None, help="deepar's units (its default)")
    parser.add_argument("--stem", default="deepar_coverage", help="result file names")
    parser.add_argument("--lookback", type=int, default=48)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = "OMP_NUM_THREADS=1 ../.venv/bin/python deepar_coverage.py " + " ".join(
        f"--{k} {v}"
        for k, v in (
            ("seeds", ",".join(map(str, args.seeds))),
            ("horizons", args.horizons),
            ("heads", args.heads),
            ("epochs", args.epochs),
            ("lookback", args.lookback),
            *((("units", args.units),) if args.units else ()),
            *((("stem", args.stem),) if args.stem != "deepar_coverage" else ()),
        )
    )
    rows = []
    for horizon in (int(h) for h in args.horizons.split(",")):
        for loss, seed in itertools.product(args.heads.split(","), args.seeds):
            rows += run(horizon, seed, args.epochs, args.lookback, loss, args.units)
            print(table(rows, command), flush=True)
            write_results(args.out, args.stem, table(rows, command), {"rows": json_safe(rows)})


if __name__ == "__main__":
    main()
