"""Integrated Gradients throughput: deepcast vs Captum on the same Keras-on-torch LSTM.

Both explain the same windows of a 2 x 64 LSTM (lookback 48, 3 features, random weights)
with 64 Gauss-Legendre steps and report the completeness delta, so both run the same
forward and backward passes plus one forward of inputs and baselines. Runs alternate
(deepcast, Captum, deepcast, ...) so load from other processes hits both alike; the median
of the repeats is reported.

    .venv/bin/python benchmarks/explain_throughput.py [--windows 512] [--steps 64] [--repeats 3]
        [--batch-size 1024] [--captum-batch-sizes 1024 8192]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import numpy as np
import torch
from captum.attr import IntegratedGradients

from deepcast.explain import integrated_gradients
from deepcast.models.lstm import build_lstm

LOOKBACK, FEATURES = 48, 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024, help="deepcast points in flight")
    parser.add_argument("--captum-batch-sizes", type=int, nargs="+", default=[1024, 8192])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = build_lstm(LOOKBACK, FEATURES, horizon=1, units=64, layers=2, dropout=0.0)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.weights])
    x = rng.normal(size=(args.windows, LOOKBACK, FEATURES)).astype("float32")
    baseline = np.zeros_like(x)

    def forward(t: torch.Tensor) -> torch.Tensor:
        return model(t, training=False)[:, 0]

    captum_ig = IntegratedGradients(forward)

    def run_deepcast(xs: np.ndarray, bs: np.ndarray) -> np.ndarray:
        r = integrated_gradients(
            model, xs, bs, steps=args.steps, batch_size=args.batch_size, verbose=False
        )
        return r.attributions

    def run_captum(xs: np.ndarray, bs: np.ndarray, internal_batch_size: int | None):
        attributions, _ = captum_ig.attribute(
            torch.from_numpy(xs),
            torch.from_numpy(bs),
            n_steps=args.steps,
            method="gausslegendre",
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
        return attributions.detach().numpy()

    # Captum's default pushes all windows x steps through in one call (~9 GB here); with
    # internal_batch_size it takes as many steps per call as fit. We give it our memory budget
    # and an 8x larger one; the faster is the bar.
    contenders = {"deepcast": run_deepcast}
    for size in args.captum_batch_sizes:
        contenders[f"captum (internal_batch_size={size})"] = partial(
            run_captum, internal_batch_size=max(size, args.windows)
        )
    for run in contenders.values():  # warm-up: kernels, allocator, lazy imports
        run(x[:16], baseline[:16])

    load_before = os.getloadavg()[0]  # other processes on the cores slow everything down
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    results = {}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            results[name] = run(x, baseline)
            rates[name].append(args.windows / (time.perf_counter() - start))

    reference = results["deepcast"]
    print(
        f"IG, {args.windows} windows x {args.steps} steps, 2x64 LSTM lookback {LOOKBACK}, "
        f"{torch.get_num_threads()} torch threads, median of {args.repeats} "
        f"(1-min load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}):"
    )
    for name, values in rates.items():
        diff = np.linalg.norm(results[name] - reference) / np.linalg.norm(reference)
        rate = statistics.median(values)
        print(f"  {name:<36} {rate:8.1f} windows/s   (rel. L2 vs deepcast {diff:.1e})")
    ours = statistics.median(rates["deepcast"])
    best_captum = max(statistics.median(v) for k, v in rates.items() if k != "deepcast")
    print(f"  ratio deepcast / best Captum: {ours / best_captum:.2f}x")


if __name__ == "__main__":
    main()
