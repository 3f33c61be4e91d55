"""What a Temporal Fusion Transformer used for its forecasts (models/tft.py), in the form of
PyTorch Forecasting's `interpret_output`: the mean variable-selection weight of every past and
known-future input, and each forecast step's attention over the lags.

Nothing here is attributed after the fact: the weights are the ones the model multiplied its
inputs by, recorded on the forward pass that made the forecasts. Selection weights of one time
step sum to 1 over the inputs; a forecast step's attention sums to 1 over every position it
may read: the lookback rows (`attention`, by lag) and the forecast steps up to itself
(`attention_to_steps`).

>>> i = f.interpret(test)                       # f: a fitted tft Forecaster
>>> i.encoder_variables                          # {"y": 0.31, "x1": 0.22, ...}, sums to 1
>>> i.attention.shape                            # forecast steps x lags (lag 1 first)
(24, 168)
>>> i.plot().savefig("tft_interpretation.png")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from deepcast.errors import ConfigError


@dataclass(frozen=True)
class Interpretation:
    """Mean selection weights keyed by input column, and attention [horizon, lookback] with
    column j the weight on lag j + 1 (the newest row is lag 1), averaged over the windows."""

    encoder_variables: dict[str, float]
    decoder_variables: dict[str, float]
    attention: np.ndarray
    attention_to_steps: np.ndarray
    windows: int
    target: str

    @property
    def lags(self) -> np.ndarray:
        return np.arange(1, self.attention.shape[1] + 1)

    def attention_by_lag(self) -> pd.Series:
        """Attention on each lag, averaged over the forecast steps (PyTorch Forecasting's
        `attention`)."""
        return pd.Series(self.attention.mean(axis=0), index=pd.Index(self.lags, name="lag"))

    def to_dict(self) -> dict:
        return {
            "encoder_variables": self.encoder_variables,
            "decoder_variables": self.decoder_variables,
            "attention": self.attention.round(6).tolist(),
            "attention_to_steps": self.attention_to_steps.round(6).tolist(),
            "windows": self.windows,
        }

    def plot(self) -> Figure:
        """Past and known-future input importance as bars, attention as a step x lag map."""
        fig = Figure(figsize=(13, 8), layout="constrained")
        grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
        for ax, (title, weights) in zip(
            (fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])),
            (
                ("past inputs (encoder variable selection)", self.encoder_variables),
                ("known-future inputs (decoder variable selection)", self.decoder_variables),
            ),
        ):
            ranked = sorted(weights.items(), key=lambda kv: kv[1])
            ax.barh([k for k, _ in ranked], [v for _, v in ranked], color="tab:blue")
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel("mean selection weight (sums to 1)")
            ax.grid(True, axis="x", alpha=0.3)
        ax = fig.add_subplot(grid[1, :])
        image = ax.imshow(
            self.attention,
            aspect="auto",
            cmap="viridis",
            origin="lower",
            extent=(0.5, self.attention.shape[1] + 0.5, 0.5, self.attention.shape[0] + 0.5),
        )
        ax.invert_xaxis()  # newest lag next to the forecast, as on a time axis
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("lag (rows before the forecast origin; 1 = newest)")
        ax.set_ylabel("forecast step")
        ax.set_title("attention of each forecast step over the lookback", fontsize="medium")
        fig.colorbar(image, ax=ax, label="attention weight (mean over heads and windows)")
        fig.suptitle(
            f"What the Temporal Fusion Transformer used to forecast {self.target} "
            f"({self.windows} windows)"
        )
        return fig


def interpret(forecaster, data: pd.DataFrame, max_windows: int | None = None) -> Interpretation:
    """Record a fitted tft `forecaster`'s selection weights and attention on the forecasts at
    every origin of `data` (the newest `max_windows` of them when given)."""
    from deepcast.models.tft import interpretation

    if forecaster.model_name != "tft":
        raise ConfigError(
            f"interpret reads a Temporal Fusion Transformer's own weights; this forecaster's "
            f"model is {forecaster.model_name!r} (use explain(), or model='tft')"
        )
    forecaster._check_fitted()
    frame = forecaster._frame(data, "data")
    forecaster._check_rows(len(frame), "data", minimum=forecaster.lookback)
    x = forecaster._input_windows(frame)
    if max_windows is not None:
        x = x[-max_windows:]
    weights = interpretation(forecaster.model_, x)
    lookback = forecaster.lookback
    names = forecaster.feature_names_
    known = [names[c] for c in forecaster.future_columns_]
    attention = weights["attention"].mean(axis=0)  # [H, L + H]
    return Interpretation(
        encoder_variables=_mean_weights(weights["past"], names),
        decoder_variables=_mean_weights(weights["known"], known),
        attention=attention[:, :lookback][:, ::-1].copy(),  # positions -> lags 1..L
        attention_to_steps=attention[:, lookback:].copy(),
        windows=len(x),
        target=forecaster.target,
    )


def _mean_weights(weights: np.ndarray, names: list[str]) -> dict[str, float]:
    means = weights.reshape(-1, weights.shape[-1]).mean(axis=0)
    return {name: float(w) for name, w in zip(names, means)}
