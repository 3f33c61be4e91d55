"""Training speed with subnormal floats flushed to zero (deepcast's torch loop) and without.

The default LSTM (2 x 64) at lookback 336 / horizon 96, on `--windows` synthetic training
windows (target only) with 2,000 validation rows, `--epochs` epochs, one torch thread unless
`--threads`; the same fit twice in one run, once as deepcast trains and once with the flush
switched off, alternating over `--repeats`. Prints the training loop's windows/s and the ratio.

    .venv/bin/python benchmarks/subnormals.py [--windows 15000] [--epochs 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import warnings

import torch

import deepcast as dc
from deepcast import training

LOOKBACK, HORIZON, VALIDATION_ROWS = 336, 96, 2000


def fit_seconds(df, n_train_rows: int, epochs: int) -> float:
    train, val = df.iloc[:n_train_rows], df.iloc[n_train_rows:]
    f = dc.Forecaster("y", lookback=LOOKBACK, horizon=HORIZON, seed=0, loss="mse")
    f.fit(train, validation=val, epochs=epochs, verbose=False)
    return f.history_.seconds  # the training loop alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=15_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    n_train_rows = args.windows + LOOKBACK + HORIZON - 1
    df = dc.datasets.synthetic(n_steps=n_train_rows + VALIDATION_ROWS, seed=0)[["y"]]
    flushing = training.flushed_subnormals
    seconds = {"flushed (deepcast)": [], "not flushed": []}
    for _ in range(args.repeats):
        training.flushed_subnormals = flushing
        seconds["flushed (deepcast)"].append(fit_seconds(df, n_train_rows, args.epochs))
        training.flushed_subnormals = contextlib.nullcontext
        seconds["not flushed"].append(fit_seconds(df, n_train_rows, args.epochs))
    training.flushed_subnormals = flushing

    windows = args.windows * args.epochs
    rate = {k: windows / statistics.median(v) for k, v in seconds.items()}
    print(
        f"{args.windows} windows x {args.epochs} epochs, lookback {LOOKBACK}, horizon {HORIZON}, "
        f"2x64 LSTM, batch 64, torch threads {args.threads}, median of {args.repeats}"
    )
    for name, value in rate.items():
        print(f"  {name:<20} {value:7.0f} windows/s")
    print(f"  ratio {rate['flushed (deepcast)'] / rate['not flushed']:.2f}x")


if __name__ == "__main__":
    main()
