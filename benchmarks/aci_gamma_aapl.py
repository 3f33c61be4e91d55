"""ACI's step on aapl_stock (daily, the one bundled set intervals.py does not cover): coverage,
width and Winkler score of deepcast's ACI at gamma 0.001, 0.002 and 0.005 around nlinear's
one-step forecasts (lookback 48, 60/20/20 split, calibrated on the validation part, seed 0).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/aci_gamma_aapl.py
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

import deepcast as dc
from deepcast.uncertainty.conformal import AdaptiveConformal

LOOKBACK, HORIZON, GAMMAS, LEVELS = 48, 1, (0.001, 0.002, 0.005), (80, 95)


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    target = dc.datasets.info("aapl_stock").target
    df = dc.datasets.load("aapl_stock")[[target]]
    train, val, test = dc.split(df, val=0.2, test=0.2)
    f = dc.Forecaster(target, lookback=LOOKBACK, horizon=HORIZON, model="nlinear", seed=0)
    f.fit(train, validation=val, epochs=10, verbose=False)
    history = pd.concat([train, val]).iloc[-LOOKBACK:]
    point = f.predict(pd.concat([history, test])).to_numpy()[: len(test)]
    y = test[target].to_numpy()[:, None]
    print(f"aapl_stock: {len(test)} test days; | level | gamma | coverage | width | Winkler |")
    for level in LEVELS:
        alpha = (100 - level) / 100
        for gamma in GAMMAS:
            aci = AdaptiveConformal(f.conformal_.scores, level, gamma=gamma, finite=True)
            lo, hi = aci.rolling(y, point)
            miss = np.maximum(lo - y, 0) + np.maximum(y - hi, 0)
            print(
                f"| {level} | {gamma} | {np.mean((lo <= y) & (y <= hi)):.3f} | "
                f"{np.mean(hi - lo):.3f} | {np.mean(hi - lo + 2 / alpha * miss):.3f} |"
            )


if __name__ == "__main__":
    main()
