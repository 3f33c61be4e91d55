"""What the benchmarks share: the real data sets as prepared for every system, the frame
NeuralForecast and Darts want, and JSON-safe, atomic result files.

Imported by the scripts beside it (`python benchmarks/accuracy.py` puts this folder on the path).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import deepcast as dc
from deepcast import _atomic
from deepcast.data.encoding import FeatureEncoder
from deepcast.data.prepare import prepare
from deepcast.errors import ConfigError
from deepcast.tuning.space import parse_scalar

RESULTS = Path(__file__).parent / "results"


@dataclass
class Task:
    """One data set, prepared once; every system gets exactly these rows."""

    name: str
    frame: pd.DataFrame  # target first, covariates as numbers (one-hot where categorical)
    target: str
    note: str
    observed: np.ndarray  # False where the target was missing in the source and filled

    def parts(self, val: float = 0.15, test: float = 0.15):
        return dc.split(self.frame, val=val, test=test)


def vic_elec_task() -> Task:
    raw = dc.datasets.load("vic_elec")
    frame = prepare(raw, "demand", ["temperature", "holiday"], resample="1h", source="vic_elec")
    observed = np.ones(len(frame), dtype=bool)
    return Task("vic_elec", frame, "demand", "hourly mean of the half-hourly data", observed)


def beijing_task(rows: int | None = None) -> Task:
    """The newest `rows` hours of Beijing PM2.5 (None: all of them)."""
    raw = dc.datasets.load("beijing_pm25")
    if rows is not None:
        raw = raw.iloc[-rows:]
    # Forward fill uses no later row, so no filled input borrows from the test part; filled
    # targets are left out of every score.
    frame = prepare(raw, "pm25", fill="forward", source="beijing_pm25")
    # The peers cannot read a categorical column: give everyone the same one-hot columns.
    encoder = FeatureEncoder.fit(frame, "pm25")
    frame = encoder.transform(frame).astype("float64")
    observed = raw["pm25"].notna().to_numpy()
    hours = "all" if rows is None else f"last {rows}"
    note = f"{hours} hours; {int((~observed).sum())} missing PM2.5 carried forward, not scored"
    return Task("beijing_pm25", frame, "pm25", note, observed)


def load_task(name: str, beijing_rows: int | None = None) -> Task:
    if name == "vic_elec":
        return vic_elec_task()
    if name == "beijing_pm25":
        return beijing_task(beijing_rows)
    raise SystemExit(f"unknown data set {name!r}; the benchmarks know vic_elec, beijing_pm25")


# ------------------------------------------------------------------------------------ peers
def naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Peers want tz-naive timestamps: the same instants in UTC (no daylight-saving jumps)."""
    if frame.index.tz is not None:
        frame = frame.tz_convert("UTC").tz_localize(None)
    return frame.astype("float32")


def nf_long_frame(frame: pd.DataFrame, target: str, series: str) -> pd.DataFrame:
    """NeuralForecast's long format: one series `series`, columns unique_id, ds, y and the
    covariates under their own names."""
    long = naive_utc(frame).rename(columns={target: "y"}).rename_axis("ds").reset_index()
    long.insert(0, "unique_id", series)
    return long


# ---------------------------------------------------------------------------------- results
def num(value, digits: int = 1) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def json_safe(value):
    """NaN and inf (a time not measured, a curve before its first trial) -> None, all through
    nested lists and dicts: JSON has neither."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_results(out: Path, stem: str, table: str, payload: dict) -> None:
    """`<stem>.md` and `<stem>.json` in `out`, each atomically (never a half-written file)."""
    _atomic.write_text(out / f"{stem}.md", table)
    _atomic.write_json(out / f"{stem}.json", payload)


def seed_list(text: str) -> list[int]:
    """--fit-seeds 0,1,2 -> [0, 1, 2]; anything else is a one-line usage error."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds such as 0,1,2; got {text!r}") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError(f"seeds are non-negative; got {text!r}")
    return seeds


def key_values(text: str, separator: str = ",") -> dict:
    """ "units=128,stack_types=generic" -> {"units": 128, "stack_types": "generic"}: numbers and
    true/false typed as the CLI types them, any other word kept as text (a model name, a loss);
    the model's own options check the values."""
    out = {}
    for item in filter(None, text.split(separator)):
        key, sep, value = (word.strip() for word in item.partition("="))
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"KEY=VALUE pairs such as units=128; got {item!r}")
        try:
            out[key] = parse_scalar(value)
        except ConfigError:
            out[key] = value
    return out


def name_list(allowed=None):
    """An argparse type: "a,b" -> ["a", "b"] ("none" -> []), each one of `allowed` if given."""

    def parse(text: str) -> list[str]:
        names = [] if text == "none" else [part.strip() for part in text.split(",") if part]
        unknown = [name for name in names if allowed is not None and name not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"{unknown}: not among {sorted(allowed)}")
        return names

    return parse
