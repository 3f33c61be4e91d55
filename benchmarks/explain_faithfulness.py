"""Which explanation to trust: every attribution method on every registered model, scored
against the synthetic data's planted truth, and each method's speed against its reference.

Part 1, faithfulness. Every registered model family (small settings, no baseline start, so
the network itself is explained) is fitted on `synthetic(n_steps=3000, seed=0)`, whose y is
driven by x1 three rows back and x2 six rows back. `dc.explain.compare` explains the newest
`--windows` hold-out forecasts (step 1) with each method and reports precision@2 of the
planted cells, deletion AUC (lower is better) against random-cell deletion, insertion AUC,
and seconds per 100 windows. A model "fits" when its hold-out MAE is less than half the
seasonal-naive MAE (skill > 50%).

Part 2, speed, side by side in one run on a 2 x 64 LSTM (lookback 48, 3 features, random
weights) and `--speed-windows` windows: each gradient method against Captum's on the same
Keras-on-torch model (Saliency, InputXGradient, NoiseTunnel(Saliency), Occlusion,
IntegratedGradients), and SHAP against the `shap` package's `GradientExplainer` called
directly with the same background and samples (same draws: the values agree). Runs alternate
(deepcast, reference, deepcast, ...); medians of `--repeats`.

    .venv/bin/python benchmarks/explain_faithfulness.py [--models lstm,nlinear] [--epochs 15]
        [--windows 100] [--speed-windows 100] [--repeats 3] [--skip-speed] [--skip-models]
        [--figures docs/figures]

Writes benchmarks/results/explain_faithfulness.{md,json}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, json_safe, name_list, num, write_results

import deepcast as dc
from deepcast import models
from deepcast.explain import methods as registry

LOOKBACK = 24
# Small members of each family; every option not named keeps its default.
SETTINGS = {
    "lstm": {"units": 32, "layers": 1, "dropout": 0.0},
    "bilstm": {"units": 16, "layers": 1, "dropout": 0.0},
    "cnn_lstm": {"units": 32, "layers": 1, "dropout": 0.0},
    "dlinear": {},
    "nlinear": {},
    "transformer": {"patch_len": 8, "stride": 4, "d_model": 32, "heads": 2, "dropout": 0.0},
    "nbeats": {"units": 64, "blocks": 2},
    "tft": {"hidden": 16, "heads": 2, "dropout": 0.0},
    "deepar": {"units": 32, "layers": 1, "dropout": 0.0},
}
METHODS = [
    "integrated_gradients",
    "shap",
    "occlusion",
    "gradient_x_input",
    "saliency",
    "smoothgrad",
]
OPTIONS = {"integrated_gradients": {"steps": 32}, "shap": {"samples": 64}}


def _top_cells(e, k: int = 3) -> str:
    """'x1@3 y@1 x2@6': the k most important (feature, lag) cells, or lags alone."""
    if not e.feature_axis:
        return " ".join(f"@{int(lag)}" for lag in e.by_lag().nlargest(k).index)
    top = e.top_cells(k)
    return " ".join(f"{f}@{int(lag)}" for f, lag in zip(top.feature, top.lag))


def faithfulness(
    names: list[str], epochs: int, windows: int, figures: Path | None = None, report=None
) -> list[dict]:
    df, truth = dc.datasets.synthetic(n_steps=3000, seed=0, return_truth=True)
    train, val, test = dc.split(df)
    rows = []
    for name in names:
        spec = models.spec(name)
        options = {k: v for k, v in SETTINGS.get(name, {}).items() if k in spec.option_names()}
        f = dc.Forecaster(
            "y",
            lookback=LOOKBACK,
            model=spec(**options),
            baseline_start=False,
            learning_rate=3e-3,
            seed=0,
        )
        started = time.perf_counter()
        f.fit(train, validation=val, epochs=epochs, verbose=False)
        fit_seconds = time.perf_counter() - started
        scores = f.evaluate(test)
        seasonal = scores["baselines"]["seasonal_naive"]["mae"]
        skill = 1 - scores["mae"] / seasonal
        chosen = METHODS + (["attention"] if spec.attention else [])
        c = dc.explain.compare(
            f,
            test,
            methods=chosen,
            truth=truth,
            max_windows=windows,
            options={m: o for m, o in OPTIONS.items() if m in chosen},
        )
        for method, r in c.table.iterrows():
            rows.append(
                {
                    "model": name,
                    "skill": skill,
                    "fits": bool(skill > 0.5),
                    "fit_seconds": fit_seconds,
                    "method": method,
                    "precision_at_2": r.precision_at_k,
                    "lag_precision_at_2": r.lag_precision_at_k,
                    "deletion_auc": r.deletion_auc,
                    "random_deletion_auc": r.random_deletion_auc,
                    "insertion_auc": r.insertion_auc,
                    "random_insertion_auc": r.random_insertion_auc,
                    "seconds_per_100": 100 * r.seconds_per_window,
                    "agreement_with_ig": float(c.agreement.loc[method, "integrated_gradients"]),
                    "top_cells": _top_cells(c.explanations[method]),
                }
            )
        if figures is not None and name == names[0]:
            save_figures(c, figures)
        print(f"{name}: skill {skill:.1%} over seasonal naive, fitted in {fit_seconds:.0f}s")
        print(c.table.round(3).to_string())
        if report is not None:
            report(rows)  # what is measured so far, in case a long run is stopped
    return rows


def save_figures(c, out: Path) -> None:
    """The README's figures: one forecast under every method, and the deletion curves."""
    from deepcast import _atomic
    from deepcast.explain.comparison_plots import methods_figure

    figure = methods_figure(c.explanations, -1, c.truth_cells)
    _atomic.save_figure(out / "explain_methods.png", figure)
    _atomic.save_figure(out / "explain_faithfulness.png", c.plot())


def speed(n: int, repeats: int) -> list[dict]:
    import shap
    import torch
    from captum.attr import (
        InputXGradient,
        IntegratedGradients,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )

    from deepcast.models.lstm import build_lstm

    rng = np.random.default_rng(0)
    model = build_lstm(48, 3, horizon=1, units=64, layers=2, dropout=0.0)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.weights])
    x = rng.normal(size=(n, 48, 3)).astype("float32")
    background = rng.normal(size=(64, 48, 3)).astype("float32")
    xt = torch.from_numpy(x)

    def forward(t):
        return model(t, training=False)[:, 0]

    class Column(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, t):
            return self.model(t, training=False)[:, :1]

    def ours(method, **options):
        return lambda: registry.explain(model, x, method, **options).values

    def grad_input():
        return xt.clone().requires_grad_()

    cases = [
        ("saliency", ours("saliency"), lambda: Saliency(forward).attribute(grad_input())),
        (
            "gradient_x_input",
            ours("gradient_x_input"),
            lambda: InputXGradient(forward).attribute(grad_input()),
        ),
        (
            "smoothgrad (32 samples)",
            ours("smoothgrad", samples=32, noise=0.2),
            lambda: NoiseTunnel(Saliency(forward)).attribute(
                grad_input(), nt_type="smoothgrad", nt_samples=32, stdevs=0.2
            ),
        ),
        (
            "occlusion (1 x 1 cells)",
            ours("occlusion"),
            lambda: Occlusion(forward).attribute(
                xt, sliding_window_shapes=(1, 1), baselines=0.0, perturbations_per_eval=10
            ),
        ),
        (
            "integrated_gradients (64 steps)",
            ours("integrated_gradients", steps=64),
            lambda: IntegratedGradients(forward).attribute(
                xt, torch.zeros_like(xt), n_steps=64, internal_batch_size=1024
            ),
        ),
        (
            "shap (100 samples)",
            ours("shap", samples=100, background=background, seed=0),
            lambda: shap.GradientExplainer(Column(), torch.from_numpy(background)).shap_values(
                xt, nsamples=100, rseed=0
            ),
        ),
    ]
    rows = []
    for label, run_ours, run_theirs in cases:
        run_ours(), run_theirs()  # warm-up
        times = {"deepcast": [], "reference": []}
        for _ in range(repeats):
            for who, run in (("deepcast", run_ours), ("reference", run_theirs)):
                started = time.perf_counter()
                out = run()
                times[who].append(time.perf_counter() - started)
                if who == "deepcast":
                    ours_values = np.asarray(out)
                else:
                    theirs_values = np.asarray(
                        out.detach().numpy() if hasattr(out, "detach") else out
                    ).reshape(x.shape)
        scale = float(np.abs(theirs_values).max()) or 1.0
        ratio = statistics.median(times["reference"]) / statistics.median(times["deepcast"])
        reference = "shap GradientExplainer" if label.startswith("shap") else "Captum"
        rows.append(
            {
                "method": label,
                "reference": reference,
                "windows": n,
                "deepcast_seconds": statistics.median(times["deepcast"]),
                "reference_seconds": statistics.median(times["reference"]),
                "speedup": ratio,
                "max_abs_difference_over_max": float(
                    np.abs(ours_values - theirs_values).max() / scale
                ),
            }
        )
        print(
            f"{label}: deepcast {rows[-1]['deepcast_seconds']:.2f}s, {reference} "
            f"{rows[-1]['reference_seconds']:.2f}s ({ratio:.1f}x)"
        )
    return rows


def markdown(fidelity: list[dict], timing: list[dict], args) -> str:
    lines = []
    if fidelity:
        lines += [
            f"Planted synthetic data (3000 hourly rows, seed 0), lookback {LOOKBACK}, "
            f"{args.epochs} epochs, no baseline start; the newest {args.windows} hold-out "
            "forecasts. precision@2: share of the two planted cells (x1 lag 3, x2 lag 6) among "
            "the two most important cells (- for attention, which has no feature axis: its "
            "lag precision is in the JSON). Deletion AUC: lower is more faithful; random: "
            "cells deleted in random order. s/100: seconds per 100 windows.",
            "",
            "| model | skill | method | precision@2 | top 3 cells | deletion AUC | random | "
            "insertion AUC | random | s/100 |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in fidelity:
            lines.append(
                f"| {r['model']} | {r['skill']:.0%} | {r['method']} | "
                f"{num(r['precision_at_2'], 2)} | {r.get('top_cells', '')} | "
                f"{num(r['deletion_auc'], 3)} | "
                f"{num(r['random_deletion_auc'], 3)} | {num(r['insertion_auc'], 3)} | "
                f"{num(r['random_insertion_auc'], 3)} | {num(r['seconds_per_100'], 2)} |"
            )
        lines.append("")
    if timing:
        lines += [
            f"Speed: 2 x 64 LSTM, lookback 48, 3 features, {timing[0]['windows']} windows, "
            f"median of {args.repeats}; same model and windows for both.",
            "",
            "| method | reference | deepcast s | reference s | speed-up | max |diff| / max |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in timing:
            lines.append(
                f"| {r['method']} | {r['reference']} | {r['deepcast_seconds']:.3f} | "
                f"{r['reference_seconds']:.3f} | {r['speedup']:.1f}x | "
                f"{r['max_abs_difference_over_max']:.1e} |"
            )
        lines += [
            "",
            "max |diff| / max: largest difference between the two results over the largest "
            "|value|; SmoothGrad draws its noise independently in each library (Monte Carlo "
            "difference; the tests give both the same noise and get the same values).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=name_list(models.names()), default=models.names())
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--speed-windows", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, help="save the first model's figures here")
    args = parser.parse_args()

    settings = vars(args) | {"out": str(args.out), "figures": str(args.figures)}
    settings["lookback"] = LOOKBACK

    def report(fidelity: list[dict], timing: list[dict]) -> str:
        table = markdown(fidelity, timing, args)
        payload = {
            "settings": settings,
            "faithfulness": json_safe(fidelity),
            "speed": json_safe(timing),
        }
        write_results(args.out, "explain_faithfulness", table, payload)
        return table

    fidelity = (
        []
        if args.skip_models
        else faithfulness(
            args.models, args.epochs, args.windows, args.figures, lambda rows: report(rows, [])
        )
    )
    timing = [] if args.skip_speed else speed(args.speed_windows, args.repeats)
    print(report(fidelity, timing))


if __name__ == "__main__":
    main()
