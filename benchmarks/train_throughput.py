"""Training throughput: deepcast `Forecaster.fit` vs a hand-written `torch.nn.LSTM` loop.

Same windows (20,000 by default, lookback 48, 3 inputs), same model size (2 x 64 LSTM, dense
head), batch 64, Adam, MSE, no dropout, measured side by side in one run, alternating, best of
`--repeats`. Prints windows/s for each and the ratio. Goal: deepcast >= 0.9x the hand loop.

    .venv/bin/python benchmarks/train_throughput.py [--windows 20000] [--epochs 2] [--stock]
    .venv/bin/python benchmarks/train_throughput.py --lookback 168 --threads 1 --windows 4000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

import deepcast as dc

LOOKBACK, UNITS, LAYERS, BATCH = 48, 64, 2, 64


def make_frame(n_windows: int, seed: int = 0) -> pd.DataFrame:
    rows = n_windows + LOOKBACK  # horizon 1: one window per row after the first lookback
    df = dc.datasets.synthetic(n_steps=rows, seed=seed)
    return df[["y", "x1", "x2"]]


def time_deepcast(df: pd.DataFrame, epochs: int) -> float:
    f = dc.Forecaster("y", lookback=LOOKBACK, units=UNITS, layers=LAYERS, dropout=0.0)
    start = time.perf_counter()
    f.fit(df, epochs=epochs, batch_size=BATCH, verbose=False)
    return time.perf_counter() - start


class HandLSTM(torch.nn.Module):
    def __init__(self, n_features: int):
        super().__init__()
        self.lstm = torch.nn.LSTM(n_features, UNITS, num_layers=LAYERS, batch_first=True)
        self.head = torch.nn.Linear(UNITS, 1)

    def forward(self, x):  # [B, L, F] -> [B, 1]
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def time_hand_loop(df: pd.DataFrame, epochs: int) -> float:
    """The reference: what an expert would write by hand in plain torch."""
    start = time.perf_counter()
    values = df.to_numpy(np.float32)
    values = (values - values.mean(0)) / values.std(0)
    x = torch.from_numpy(
        np.lib.stride_tricks.sliding_window_view(values[:-1], LOOKBACK, axis=0)
        .swapaxes(1, 2)
        .copy()
    )
    y = torch.from_numpy(values[LOOKBACK:, :1].copy())
    torch.manual_seed(0)
    model = HandLSTM(values.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def time_stock_keras(df: pd.DataFrame, epochs: int) -> float:
    """Context only: stock keras.layers.LSTM through Model.fit (Python time loop on CPU)."""
    import keras

    values = df.to_numpy(np.float32)
    values = (values - values.mean(0)) / values.std(0)
    x = np.lib.stride_tricks.sliding_window_view(values[:-1], LOOKBACK, axis=0).swapaxes(1, 2)
    y = values[LOOKBACK:, :1]
    inputs = keras.Input((LOOKBACK, values.shape[1]))
    h = keras.layers.LSTM(UNITS, return_sequences=True)(inputs)
    h = keras.layers.LSTM(UNITS)(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    start = time.perf_counter()
    model.fit(np.ascontiguousarray(x), y, batch_size=BATCH, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def main() -> None:
    global LOOKBACK  # every timed function reads it: one setting for both contenders
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stock", action="store_true", help="also time stock Keras Model.fit")
    parser.add_argument("--lookback", type=int, default=LOOKBACK, help="window length")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    LOOKBACK = args.lookback
    torch.set_num_threads(args.threads or torch.get_num_threads())
    df = make_frame(args.windows)
    runs = {
        "hand-written torch.nn.LSTM loop": time_hand_loop,
        "deepcast Forecaster.fit": time_deepcast,
    }
    if args.stock:
        runs["stock Keras LSTM, Model.fit"] = time_stock_keras
    time_hand_loop(df.iloc[: 2 * LOOKBACK + 200], 1)  # warm-up: first-call costs of torch
    time_deepcast(df.iloc[: 2 * LOOKBACK + 200], 1)
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):  # alternate, so machine noise hits both alike
        for name, fn in runs.items():
            best[name] = min(best[name], fn(df, args.epochs))
    n = args.windows * args.epochs
    reference = n / best["hand-written torch.nn.LSTM loop"]
    print(
        f"{args.windows} windows x {args.epochs} epochs, lookback {LOOKBACK}, 3 inputs, "
        f"{LAYERS}x{UNITS} LSTM, batch {BATCH}, torch threads {torch.get_num_threads()}"
    )
    for name in runs:
        rate = n / best[name]
        print(f"  {name:<34} {rate:>8,.0f} windows/s   {rate / reference:5.2f}x")


if __name__ == "__main__":
    main()
