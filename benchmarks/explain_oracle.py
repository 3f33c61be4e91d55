"""The planted data's own answer: exact attributions of the one-step mean that generated it.

`synthetic()`'s target is y_t = time_t + drivers_t + n_t: trend and seasonality, the planted
driver terms (x1 lag 3, x2 lag 6 and their product) and AR(1) noise n_t = 0.7 n_{t-1} + 0.35 e_t.
The best one-step forecast from the input window is therefore

    m_t = time_t + drivers_t + 0.7 (y_{t-1} - time_{t-1} - drivers_{t-1})

in which every driver term appears twice: at its own lags, and one lag later, times -0.7.
As a function of the window's cells m is a polynomial, so its Integrated Gradients have a
closed form (a product term's path integral by Gauss-Legendre quadrature, exact for it), with
deepcast's default baseline, the training mean of every column. The time terms are not cells.
This is what a perfectly faithful method says about a perfect model: the ranking that
`explain_faithfulness.py`'s precision@2 of the planted cells is measured against.

The script checks itself: y - m must be the noise shock alone (sd 0.35), and the attributions
of every window must add up to m(x) - m(baseline) (completeness).

    .venv/bin/python benchmarks/explain_oracle.py [--seeds 0,1,2] [--windows 100]

Writes benchmarks/results/explain_oracle.{md,json}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, json_safe, seed_list, write_results

import deepcast as dc
from deepcast.data.synthetic import NOISE_AR, NOISE_SHOCK, PlantedTerm

NODES, WEIGHTS = np.polynomial.legendre.leggauss(8)  # exact for path integrands of degree < 16
ALPHAS, ALPHA_WEIGHTS = (NODES + 1) / 2, WEIGHTS / 2  # on [0, 1]


def one_step_terms(terms: tuple[PlantedTerm, ...], target: str) -> list[PlantedTerm]:
    """m's cell terms: each driver term, the same term one lag later times -NOISE_AR, and
    NOISE_AR times y's newest row."""
    later = [
        PlantedTerm(-NOISE_AR * t.coef, tuple((f, lag + 1) for f, lag in t.cells)) for t in terms
    ]
    return [*terms, *later, PlantedTerm(NOISE_AR, ((target, 1),))]


def exact_ig(terms: list[PlantedTerm], df: pd.DataFrame, rows: np.ndarray, base: pd.Series):
    """{cell: attribution [len(rows)]} of sum(terms) at the windows forecasting `rows`."""
    out: dict[tuple[str, int], np.ndarray] = {}
    for term in terms:
        x = {c: df[c[0]].to_numpy()[rows - c[1]] for c in term.cells}
        b = {c: float(base[c[0]]) for c in term.cells}
        for cell in term.cells:
            # d/dx_cell of the product along b + alpha (x - b), integrated over alpha
            path = np.ones((len(ALPHAS), len(rows)))
            for other in term.cells:
                if other != cell:
                    path *= b[other] + ALPHAS[:, None] * (x[other] - b[other])
            share = term.coef * (x[cell] - b[cell]) * (ALPHA_WEIGHTS @ path)
            out[cell] = out.get(cell, 0.0) + share
    return out


def evaluate(terms: list[PlantedTerm], df: pd.DataFrame, rows: np.ndarray, values=None):
    """sum(terms) at the windows forecasting `rows`; `values` replaces every cell's value."""
    total = np.zeros(len(rows))
    for term in terms:
        part = np.full(len(rows), term.coef)
        for feature, lag in term.cells:
            part = part * (
                values[feature] if values is not None else df[feature].to_numpy()[rows - lag]
            )
        total += part
    return total


def run_seed(seed: int, n_windows: int) -> dict:
    df, truth = dc.datasets.synthetic(n_steps=3000, seed=seed, return_truth=True)
    train, _, _ = dc.split(df)
    terms = one_step_terms(truth.terms, truth.target)
    base = train.mean()

    # Self-check 1: m is the conditional mean, so y - m is the shock alone.
    shock_sd = float((df[truth.target] - truth.one_step_mean(df)).std())

    rows = np.arange(len(df) - n_windows, len(df))
    attributions = exact_ig(terms, df, rows, base)
    # Self-check 2: completeness, sum of attributions = m(x) - m(baseline).
    gap = evaluate(terms, df, rows) - evaluate(terms, df, rows, values=base)
    summed = sum(attributions.values())
    completeness = float(np.max(np.abs(summed - gap)))

    importance = {cell: float(np.mean(np.abs(a))) for cell, a in attributions.items()}
    ranked = sorted(importance, key=lambda cell: -importance[cell])
    planted = set(truth.cells)
    return {
        "seed": seed,
        "shock_sd": shock_sd,
        "completeness_error": completeness,
        "ranking": [
            {
                "feature": f,
                "lag": lag,
                "importance": importance[(f, lag)],
                "planted": (f, lag) in planted,
            }
            for f, lag in ranked
        ],
        "precision_at_2": sum(cell in planted for cell in ranked[:2]) / 2,
    }


def markdown(results: list[dict], args) -> str:
    lines = [
        "# Exact attributions of the planted data's one-step mean",
        "",
        f"synthetic(n_steps=3000, seed), the newest {args.windows} one-step forecasts; "
        "Integrated Gradients of m_t = time_t + drivers_t + 0.7 (y_{t-1} - time_{t-1} - "
        "drivers_{t-1}) in closed form, baseline the training mean (deepcast's default). "
        "Importance: mean |attribution| over the windows, y's units. Planted cells: x1 lag 3, "
        "x2 lag 6.",
        "",
        "    .venv/bin/python benchmarks/explain_oracle.py",
        "",
        "| seed | precision@2 | ranking (cell: importance, * planted) | sd of y - m "
        "| completeness error |",
        "|---:|---:|---|---:|---:|",
    ]
    for r in results:
        ranking = ", ".join(
            f"{c['feature']}@{c['lag']}{'*' if c['planted'] else ''}: {c['importance']:.2f}"
            for c in r["ranking"]
        )
        lines.append(
            f"| {r['seed']} | {r['precision_at_2']:.2f} | {ranking} | {r['shock_sd']:.3f} | "
            f"{r['completeness_error']:.1e} |"
        )
    lines += [
        "",
        f"sd of y - m: the noise shock's sd is {NOISE_SHOCK}, so m is the conditional mean. "
        "A model that learns m exactly, explained exactly, puts y lag 1 among its two most "
        "important cells: precision@2 of the planted cells is 0.5 for it.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=[0, 1, 2])
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = [run_seed(seed, args.windows) for seed in args.seeds]
    table = markdown(results, args)
    write_results(
        args.out,
        "explain_oracle",
        table,
        {"settings": vars(args) | {"out": str(args.out)}, "seeds": json_safe(results)},
    )
    print(table)


if __name__ == "__main__":
    main()
