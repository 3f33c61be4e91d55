"""Gradient attributions and SHAP: deepcast vs Captum and the `shap` package, side by side.

Every contender explains the same windows of the same 2 x 64 LSTM (lookback 48, 3 features,
random weights, Keras on torch) for the first forecast step, and every pair is checked to give
the same numbers (relative L2 difference printed) before its speed counts:

- saliency (|gradient|): deepcast vs Captum `Saliency(abs=True)`;
- gradient x input: deepcast vs Captum `InputXGradient`;
- SmoothGrad (16 noisy copies, sd 0.2): deepcast vs Captum `NoiseTunnel(Saliency)`; their noise
  differs (numpy vs torch draws), so their difference is sampling noise, not an error;
- SHAP (expected gradients, 100 samples, 20 background windows) on 100 windows: deepcast vs
  `shap.GradientExplainer` called directly with the same samples and seed.

Runs alternate (deepcast, reference, deepcast, ...) so load from other processes hits both
alike; the median of the repeats is reported, as windows per second and as a ratio.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/explain_speed.py [--windows 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import shap
import torch
from _common import RESULTS
from captum.attr import InputXGradient, NoiseTunnel, Saliency

from deepcast.explain import methods
from deepcast.models.lstm import build_lstm

LOOKBACK, FEATURES = 48, 3


class FirstStep(torch.nn.Module):
    """The model's first forecast step as [n, 1] (what `shap` expects of a torch model)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, training=False)[:, :1]


def contenders(model, x: np.ndarray, background: np.ndarray, shap_windows: int) -> dict:
    """{method: (deepcast run, reference run, windows explained)}; each run returns [n, L, F]."""

    def forward(t: torch.Tensor) -> torch.Tensor:
        return model(t, training=False)[:, 0]

    def ours(name, windows, **options):
        return lambda: methods.explain(model, windows, name, verbose=False, **options).values

    def grad_input() -> torch.Tensor:
        return torch.from_numpy(x).requires_grad_()

    few = x[:shap_windows]
    explainer = shap.GradientExplainer(FirstStep(model), torch.from_numpy(background))
    return {
        "saliency": (
            ours("saliency", x),
            lambda: Saliency(forward).attribute(grad_input(), abs=True).detach().numpy(),
            len(x),
        ),
        "gradient_x_input": (
            ours("gradient_x_input", x),
            lambda: InputXGradient(forward).attribute(grad_input()).detach().numpy(),
            len(x),
        ),
        "smoothgrad": (
            ours("smoothgrad", x, samples=16, noise=0.2, seed=0),
            lambda: (
                NoiseTunnel(Saliency(forward))
                .attribute(torch.from_numpy(x), nt_type="smoothgrad", nt_samples=16, stdevs=0.2)
                .detach()
                .numpy()
            ),
            len(x),
        ),
        "shap": (
            ours("shap", few, background=background, samples=100, seed=3),
            lambda: np.asarray(
                explainer.shap_values(torch.from_numpy(few), nsamples=100, rseed=3)
            ).reshape(few.shape),
            len(few),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument("--shap-windows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "explain_speed.md"))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = build_lstm(LOOKBACK, FEATURES, horizon=1, units=64, layers=2, dropout=0.0)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.weights])
    x = rng.normal(size=(args.windows, LOOKBACK, FEATURES)).astype("float32")
    background = rng.normal(size=(20, LOOKBACK, FEATURES)).astype("float32")
    runs = contenders(model, x, background, args.shap_windows)
    for ours, reference, _ in runs.values():  # warm-up: kernels, allocator, lazy imports
        ours(), reference()

    load_before = os.getloadavg()[0]
    rows = []
    for name, (ours, reference, n) in runs.items():
        times = {"deepcast": [], "reference": []}
        for _ in range(args.repeats):
            for who, run in (("deepcast", ours), ("reference", reference)):
                start = time.perf_counter()
                values = run()
                times[who].append(time.perf_counter() - start)
                if who == "deepcast":
                    mine = values
                else:
                    theirs = values
        difference = np.linalg.norm(mine - theirs) / np.linalg.norm(theirs)
        rate = {who: n / statistics.median(t) for who, t in times.items()}
        rows.append((name, n, rate["deepcast"], rate["reference"], difference))

    header = (
        f"2x64 LSTM, lookback {LOOKBACK}, {FEATURES} features; {torch.get_num_threads()} torch "
        f"thread(s); median of {args.repeats}; 1-min load average before/after "
        f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
    )
    references = {
        "saliency": "Captum Saliency",
        "gradient_x_input": "Captum InputXGradient",
        "smoothgrad": "Captum NoiseTunnel(Saliency)",
        "shap": "shap.GradientExplainer",
    }
    lines = [
        "# Attribution speed: deepcast vs Captum and shap (benchmarks/explain_speed.py)",
        "",
        header,
        "",
        "| method | windows | deepcast windows/s | reference | reference windows/s | "
        "deepcast / reference | rel. L2 difference |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, n, ours, theirs, difference in rows:
        lines.append(
            f"| {name} | {n} | {ours:,.0f} | {references[name]} | {theirs:,.0f} | "
            f"{ours / theirs:.2f}x | {difference:.1e} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(text)


if __name__ == "__main__":
    main()
