"""Forecasting speed per family at several rows per forward call, side by side in one run.

Each family is fitted for one epoch on synthetic data (target plus two drivers; the TFT and
DeepAR add the calendar of the forecast steps), then forecasts the same `--windows` windows
through `deepcast._backend.predict` at each `--rows` value, alternating over `--repeats` (best
kept), one torch thread unless `--threads`. Prints windows/s per row count and each family's
default (`_backend.predict_rows`), so a layer's `predict_rows` can be checked against the
measurement. Writes benchmarks/results/predict_rows.md and .json (`--out`, `--suffix`).

    .venv/bin/python benchmarks/predict_rows.py [--models tft,lstm,...] [--lookback 168]
        [--horizon 24] [--windows 2000] [--rows 32,64,128,256,1024] [--repeats 2]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import torch
from _common import RESULTS, write_results

import deepcast as dc
from deepcast import _backend

FAMILIES = "lstm,bilstm,cnn_lstm,dlinear,nlinear,transformer,nbeats,tft,deepar"


def fitted(model: str, lookback: int, horizon: int, rows: int) -> tuple[dc.Forecaster, object]:
    """A forecaster trained for one epoch, and its scaled input windows over `rows` rows."""
    df = dc.datasets.synthetic(n_steps=rows + lookback + horizon + 2000, seed=0)[["y", "x1", "x2"]]
    train, data = df.iloc[:2000], df.iloc[2000:]
    f = dc.Forecaster("y", lookback=lookback, horizon=horizon, model=model, seed=0)
    f.fit(train, epochs=1, verbose=False)
    x, _ = f._windows(f._frame(data, "data"))
    return f, x


def windows_per_s(f: dc.Forecaster, x, rows: int) -> float:
    start = time.perf_counter()
    _backend.predict(f.model_, x, batch_size=rows)
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=FAMILIES)
    parser.add_argument("--lookback", type=int, default=168)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--rows", default="32,64,128,256,1024")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--suffix", default="", help="result file names: predict_rows<suffix>")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("deepcast").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    counts = [int(r) for r in args.rows.split(",")]
    header = (
        f"Lookback {args.lookback}, horizon {args.horizon}, {args.windows} windows, "
        f"{args.threads} thread(s), best of {args.repeats}: forecast windows/s at each number "
        "of rows per forward call; default: `_backend.predict_rows` of the model.\n\n"
        f"| model | default | {' | '.join(map(str, counts))} | fastest |\n"
        f"|---|---:|{'---:|' * len(counts)}---|\n"
    )
    print(header, end="")
    lines, rows = [], []
    for model in args.models.split(","):
        f, x = fitted(model, args.lookback, args.horizon, args.windows)
        best = {r: 0.0 for r in counts}
        for _ in range(args.repeats):
            for r in counts:
                best[r] = max(best[r], windows_per_s(f, x, r))
        default = _backend.predict_rows(f.model_)
        fastest = max(best, key=best.get)
        at_default = best.get(default)
        versus = f"{best[fastest] / at_default:.2f}x the default" if at_default else "-"
        cells = " | ".join(f"{best[r]:.0f}" for r in counts)
        lines.append(f"| {model} | {default} | {cells} | {fastest} ({versus}) |")
        rows.append({"model": model, "default": default, "windows_per_s": best})
        print(lines[-1], flush=True)
        table = header + "\n".join(lines) + "\n"
        write_results(
            args.out,
            f"predict_rows{args.suffix}",
            table,
            {"settings": vars(args) | {"out": str(args.out)}, "rows": rows},
        )


if __name__ == "__main__":
    main()
