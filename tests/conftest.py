"""Shared fixtures: small data and one small trained forecaster, built once per session."""

from __future__ import annotations

import pandas as pd
import pytest

import deepcast as dc


@pytest.fixture(scope="session")
def small_df() -> pd.DataFrame:
    """900 hourly rows of the synthetic generator: enough for lookback 24 and splits."""
    return dc.datasets.synthetic(n_steps=900, seed=3)


@pytest.fixture(scope="session")
def small_parts(small_df):
    return dc.split(small_df, val=0.15, test=0.2)


@pytest.fixture(scope="session")
def fitted(small_parts) -> dc.Forecaster:
    """A real, briefly trained 2-layer LSTM forecaster with horizon 3."""
    train, val, _ = small_parts
    forecaster = dc.Forecaster("y", lookback=24, horizon=3, units=16, layers=2, seed=1)
    return forecaster.fit(train, validation=val, epochs=4, batch_size=32, verbose=False)
