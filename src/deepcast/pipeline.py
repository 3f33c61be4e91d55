"""The whole job on one frame: split, fit, evaluate, plot, save. Used by the CLI and the demo.

Every file lands atomically in the run directory:
`metrics.json`, `forecast.png`, `model/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepcast import _atomic
from deepcast.data.io import check_length
from deepcast.data.windows import split
from deepcast.forecaster import Forecaster

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    forecaster: Forecaster
    metrics: dict
    out: Path
    parts: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def run(
    df: pd.DataFrame,
    *,
    target: str,
    out: str | Path,
    forecaster_args: dict | None = None,
    epochs: int = 50,
    batch_size: int = 64,
    val: float = 0.15,
    test: float = 0.15,
    source: str = "data",
    verbose: bool | None = None,
) -> RunResult:
    """Split `df` chronologically, fit on train (early stopping on val), score on test."""
    out = Path(out)
    forecaster = Forecaster(target=target, **(forecaster_args or {}))
    check_length(len(df), forecaster.lookback, forecaster.horizon, source, val=val, test=test)
    train_part, val_part, test_part = split(df, val=val, test=test)
    forecaster.fit(
        train_part, validation=val_part, epochs=epochs, batch_size=batch_size, verbose=verbose
    )
    metrics = forecaster.evaluate(test_part)
    metrics["data"] = {
        "source": source,
        "rows": {"train": len(train_part), "validation": len(val_part), "test": len(test_part)},
        "test_start": str(test_part.index[0]),
        "test_end": str(test_part.index[-1]),
    }
    metrics["params"] = forecaster.get_params()
    metrics["training"] = forecaster.history_.to_json()

    forecaster.save(out / "model")
    _atomic.save_figure(
        out / "forecast.png",
        forecaster.plot_forecast(test_part, context=pd.concat([train_part, val_part])),
    )
    _atomic.write_json(out / "metrics.json", metrics)
    return RunResult(forecaster, metrics, out, (train_part, val_part, test_part))


def metrics_table(metrics: dict) -> str:
    """A plain-text table: the model next to its baselines on the hold-out part."""
    rows = [("model", metrics)] + list(metrics["baselines"].items())
    keys = ("rmse", "mae", "smape", "mase")
    header = f"{'':<16}" + "".join(f"{k.upper():>10}" for k in keys)
    lines = [header]
    for name, m in rows:
        cells = "".join(f"{_fmt(m.get(k)):>10}" for k in keys)
        lines.append(f"{name:<16}{cells}")
    skill = metrics.get("skill_vs_seasonal_naive")
    if skill is not None:
        lines.append(f"RMSE skill vs seasonal naive: {skill:+.1%}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"
