"""An interpretable N-BEATS forecast split into its trend and seasonality components, in the
target's original units, at every forecast origin (models/nbeats.py).

The model sums its stacks' forecasts, so the split is exact: nothing is attributed, each
component is what its stack forecast. What wraps the stacks is accounted for:

- the global scaler (`y = mean + scale * scaled`): both components are multiplied by the
  scale, and the mean goes to the component that carries the level: the trend, or the
  baseline when there is one;
- `baseline_start=True` (the Forecaster's default): forecast = baseline(window) + alpha *
  network(window); the baseline (the naive, seasonal-naive or ridge forecast it started from)
  is its own component, `baseline`, in original units, and trend and seasonality are the
  network's components, multiplied by the gate alpha: corrections to that baseline;
- `window_norm=True`: the network forecasts in units of each window's own mean and std; the
  components are multiplied by that std and the window's mean goes to the trend.

So trend + seasonality (+ baseline) = the forecast `Forecaster.predict` returns.

>>> d = f.decompose(test)                      # f: an nbeats Forecaster, interpretable stacks
>>> d.trend.shape                              # origins x horizon steps, like f.predict(test)
(n, 24)
>>> d.plot().savefig("decomposition.png")
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from deepcast import _backend
from deepcast.errors import ConfigError
from deepcast.evaluation import baselines
from deepcast.models import baseline_start as start
from deepcast.models.nbeats import INTERPRETABLE, stack_forecasts
from deepcast.models.registry import core_model

_COLORS = {"trend": "tab:red", "seasonality": "tab:green", "baseline": "tab:purple"}


@dataclass(frozen=True)
class Decomposition:
    """Components of forecasts, each origins x horizon steps in original units, indexed and
    labelled as `Forecaster.predict` labels its forecasts.

    `forecast` = `trend` + `seasonality` (+ `baseline`, None without a baseline start);
    `actual` holds the value each forecast targets, NaN past the data's end;
    `baseline_name` says which baseline the start is ("seasonal_naive", ...), and
    `baseline_label` the same for people ("seasonal naive, period 24").
    """

    trend: pd.DataFrame
    seasonality: pd.DataFrame
    baseline: pd.DataFrame | None
    forecast: pd.DataFrame
    actual: pd.DataFrame
    target: str
    baseline_name: str | None = None
    baseline_label: str | None = None
    step_times: pd.DataFrame | None = None  # the time each forecast targets

    @property
    def components(self) -> dict[str, pd.DataFrame]:
        """{name: frame} of the parts that sum to the forecast."""
        parts = {"trend": self.trend, "seasonality": self.seasonality}
        if self.baseline is not None:
            parts["baseline"] = self.baseline
        return parts

    def plot(self, step: int = 1, units: str | None = None) -> Figure:
        """Forecasts `step` rows ahead over time: actual and forecast on top, then one panel
        per component, sharing the time axis. `units` labels the y axes."""
        horizon = self.forecast.shape[1]
        if not 1 <= step <= horizon:
            raise ConfigError(f"step must be in 1..{horizon}. Received: step={step}")
        column = step - 1
        times = (
            self.step_times.iloc[:, column].to_numpy()
            if self.step_times is not None
            else self.forecast.index.to_numpy()
        )
        ylabel = f"{self.target} [{units}]" if units else self.target
        parts = self.components
        fig = Figure(figsize=(12, 2.4 * (1 + len(parts)) + 0.6), layout="constrained")
        axes = fig.subplots(1 + len(parts), 1, sharex=True)
        top = axes[0]
        known = self.actual.iloc[:, column].notna().to_numpy()
        actual, forecast = self.actual.iloc[:, column], self.forecast.iloc[:, column]
        top.plot(times[known], actual[known], color="black", lw=1.0, label="actual")
        top.plot(times, forecast, color="tab:blue", lw=1.2, label="forecast")
        top.set_title("forecast = " + " + ".join(parts), fontsize="medium")
        for ax, (name, frame) in zip(axes[1:], parts.items()):
            label = name
            if name == "baseline" and self.baseline_label:
                label = f"baseline: {self.baseline_label}"
            ax.plot(times, frame.iloc[:, column], color=_COLORS[name], lw=1.2, label=label)
            if name == "seasonality":
                ax.axhline(0.0, color="0.5", lw=0.6)
        for ax in axes:
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="upper left", fontsize="small", frameon=False)
        axes[-1].set_xlabel("forecast time")
        fig.suptitle(f"N-BEATS decomposition of {self.target}, forecasts {step} step(s) ahead")
        return fig


def decompose(forecaster, data: pd.DataFrame) -> Decomposition:
    """Split the forecasts of a fitted interpretable nbeats `forecaster` at every origin of
    `data` (as `forecaster.predict(data)`) into trend, seasonality and, with a baseline
    start, baseline, in original units. ConfigError for any other model."""
    forecaster._check_fitted()
    spec = forecaster.model_config_
    if spec.name != "nbeats" or spec.config.get("stack_types") != "interpretable":
        described = spec.name
        if spec.name == "nbeats":
            described = f"nbeats with stack_types={spec.config.get('stack_types')!r}"
        raise ConfigError(
            "decompose needs an nbeats model with interpretable stacks "
            f"(model='nbeats', stack_types='interpretable'); this forecaster's model is {described}"
        )
    frame = forecaster._frame(data, "data")
    forecaster._check_rows(len(frame), "data", minimum=forecaster.lookback)
    x = np.asarray(forecaster._input_windows(frame), dtype=np.float32)  # [N, L, F], scaled

    scaled = scaled_components(forecaster.model_, x)  # {name: [N, H]}, scaled units
    mean, scale = forecaster.scaler_.mean[0], forecaster.scaler_.scale[0]
    level = "baseline" if "baseline" in scaled else "trend"
    original = {
        name: value * scale + (mean if name == level else 0.0) for name, value in scaled.items()
    }

    origins = frame.index[forecaster.lookback - 1 :].rename("origin")
    steps = range(1, forecaster.horizon + 1)
    columns = [f"{forecaster.target}[t+{h}]" for h in steps]

    def table(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=origins, columns=columns)

    forecast = forecaster._predict_windows(x)
    baseline = original.get("baseline")
    start_info = getattr(forecaster, "start_", None) or {}
    baseline_name = start_info.get("baseline") if baseline is not None else None
    return Decomposition(
        trend=table(original["trend"]),
        seasonality=table(original["seasonality"]),
        baseline=None if baseline is None else table(baseline),
        forecast=table(forecast),
        actual=table(forecaster._future_actuals(frame)),
        target=forecaster.target,
        baseline_name=baseline_name,
        baseline_label=baseline_name
        and baselines.baseline_label(baseline_name, forecaster.seasonal_period_),
        step_times=table(_step_times(frame.index, forecaster.lookback, forecaster.horizon)),
    )


def scaled_components(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """{"trend", "seasonality"[, "baseline"]: [N, H]} in scaled units for scaled windows
    `x`, summing to `model(x)`: the nbeats stacks' forecasts through whatever wraps them."""
    core = core_model(model)
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    has_baseline = _has_layer(model, start.PATH) and len(inner) == 1
    network = inner[0] if has_baseline else model  # the model behind the gate
    x_core, std, window_mean = x, None, None
    if network is not core and _has_layer(network, "window_norm"):
        normalised, stats = network.get_layer("window_norm").output
        x_core = _backend.predict(keras.Model(network.inputs, normalised), x)
        stats = _backend.predict(keras.Model(network.inputs, stats), x)  # [N, 2]
        window_mean, std = stats[:, :1], stats[:, 1:]

    stacks = stack_forecasts(core, x_core)
    if tuple(stacks) != INTERPRETABLE:
        raise ConfigError(
            f"decompose needs the stacks {', '.join(INTERPRETABLE)}; {core.name} has "
            f"{', '.join(stacks)}"
        )
    parts = {name: stacks[name].astype(np.float64) for name in INTERPRETABLE}
    if std is not None:  # window units -> scaled units; the window's level is the trend's
        parts = {name: value * std for name, value in parts.items()}
        parts["trend"] = parts["trend"] + window_mean
    if has_baseline:
        alpha = float(keras.ops.convert_to_numpy(model.get_layer(start.GATE).alpha))
        parts = {name: alpha * value for name, value in parts.items()}
        path = keras.Model(model.inputs, model.get_layer(start.PATH).output)
        parts["baseline"] = _backend.predict(path, x).astype(np.float64)
    return parts


def _has_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def _step_times(index: pd.DatetimeIndex, lookback: int, horizon: int) -> np.ndarray:
    """[origins, H] the time each forecast targets; past the data's end, extrapolated by the
    last row spacing."""
    n = len(index) - lookback + 1
    rows = np.arange(n)[:, None] + lookback + np.arange(horizon)[None, :]
    spacing = index[-1] - index[-2] if len(index) > 1 else pd.Timedelta(0)
    beyond = index[-1] + spacing * np.arange(1, horizon + 1)
    known = index.append(pd.DatetimeIndex(beyond))
    return np.asarray(known.to_numpy()[rows])
