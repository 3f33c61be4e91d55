"""Does tuning pay? Hold-out RMSE of the default Forecaster vs the tuned one.

Synthetic hourly data (`dc.datasets.synthetic(seed=0)`, 4,000 rows), split 70/15/15. The
default configuration (lookback 48, 2 x 64 LSTM, dropout 0.1, lr 1e-3, batch 64) and the best
of a random search over the default search space (10 trials) are both trained on the train
part with early stopping on validation, for the same epoch budget, and scored with `evaluate`
on the same hold-out part. Goal: tuned RMSE < default RMSE.

    .venv/bin/python benchmarks/tuning.py [--trials 10] [--epochs 40] [--algorithm random]
                                          [--tune units=16:128:log] [--resume]

Takes long on 2 CPU cores: the default space reaches 3 x 256-unit LSTMs over 96 steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import deepcast as dc
from deepcast import tuning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--algorithm", default="random", choices=tuning.ALGORITHMS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark-tuning"))
    parser.add_argument("--resume", action="store_true", help="continue an earlier search")
    parser.add_argument(
        "--tune", action="append", default=[], metavar="NAME=SPEC", help="narrow the space"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    df = dc.datasets.synthetic(seed=0)
    train, val, test = dc.split(df, val=0.15, test=0.15)
    print(f"data: synthetic(seed=0), {len(train)}/{len(val)}/{len(test)} rows train/val/test")

    start = time.perf_counter()
    default = dc.Forecaster("y", seed=args.seed)
    default.fit(train, validation=val, epochs=args.epochs, batch_size=64, verbose=False)
    default_metrics = default.evaluate(test)
    default_seconds = time.perf_counter() - start
    print(f"default {default.get_params()}: RMSE {default_metrics['rmse']:.4f}")

    start = time.perf_counter()
    result = tuning.tune(
        train,
        val,
        target="y",
        directory=args.out / "tuning",
        algorithm=args.algorithm,
        max_trials=args.trials,
        epochs=args.epochs,
        seed=args.seed,
        overwrite=not args.resume,
        narrow=tuning.parse_assignments(args.tune),
    )
    search_seconds = time.perf_counter() - start
    print(result.table(k=5))
    tuned = dc.Forecaster(**result.best_forecaster_args())
    tuned.fit(train, validation=val, **result.best_fit_args(), verbose=False)
    tuned_metrics = tuned.evaluate(test)
    tuning.write_report(result, args.out)

    d, t = default_metrics["rmse"], tuned_metrics["rmse"]
    summary = {
        "algorithm": args.algorithm,
        "trials": len(result.trials),
        "epochs": args.epochs,
        "default": {"rmse": d, "mae": default_metrics["mae"], "seconds": default_seconds},
        "tuned": {
            "rmse": t,
            "mae": tuned_metrics["mae"],
            "hyperparameters": result.best["hyperparameters"],
            "search_seconds": search_seconds,
        },
        "seasonal_naive_rmse": default_metrics["baselines"]["seasonal_naive"]["rmse"],
        "relative_improvement": (d - t) / d,
    }
    (args.out / "benchmark.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"\nhold-out RMSE (original units, {tuned_metrics['n_forecasts']} forecasts):\n"
        f"  default  {d:.4f}   (fit {default_seconds:.0f}s)\n"
        f"  tuned    {t:.4f}   ({len(result.trials)} {args.algorithm} trials, "
        f"search {search_seconds:.0f}s)\n"
        f"  seasonal naive {summary['seasonal_naive_rmse']:.4f}\n"
        f"relative improvement: {summary['relative_improvement']:+.1%} "
        f"({'PASS' if t < d else 'FAIL'}: tuned must be better)"
    )


if __name__ == "__main__":
    main()
