"""`nbeats`: stacks of fully connected blocks with basis expansions and double residuals
(Oreshkin et al., "N-BEATS: Neural basis expansion analysis for interpretable time series
forecasting", ICLR 2020), with the covariate window in every block's input (NBEATSx, Olivares
et al., International Journal of Forecasting 2023).

[B, L, F] -> target history x [B, L] (column 0), covariates c [B, L * (F - 1)] (lag-major)
block:  [x, c] -> FC (units, ReLU) x layers -> theta_b, theta_f -> backcast [B, L] = theta_b @ V_b
                                                                   forecast [B, H] = theta_f @ V_f
stack:  x_{k+1} = x_k - backcast_k; stack forecast = sum of its blocks' forecasts
model:  forecast [B, H] = sum of the stack forecasts (each stack starts from the last residual)

`stack_types="interpretable"` (the default) has two stacks, named "trend" and "seasonality",
whose bases make their forecasts components one can read:

- trend: V rows are t^0 .. t^degree; forecast t = 0, 1/H, .., (H-1)/H (the paper's grid),
  backcast t = -(L-1)/L .. 0 (the window, newest row at 0). Separate thetas for backcast and
  forecast, as in the paper; each grid spans at most one unit, so the powers stay in [-1, 1].
- seasonality: V rows are cos(2 pi k s / period), sin(2 pi k s / period), k = 1..harmonics,
  over row offsets s from the window's newest row (backcast s = -(L-1)..0, forecast 1..H), so
  backcast and forecast share phase. The paper ties the periods to the horizon (H / k); ours
  are tied to `period` (24: daily for hourly rows), so a daily cycle is representable however
  short the horizon. No k = 0 term: the level belongs to the trend, which keeps the two
  components apart (the paper's basis has a constant in both). Harmonics above period / 2 only
  alias lower ones, so they are dropped (and the sine at exactly period / 2, which is zero).

`stack_types="generic"` has two stacks ("generic_1", "generic_2") whose bases are learned
(a linear map of the FC output), the paper's N-BEATS-G. `share_weights` makes a stack apply one
block `blocks` times, as the paper's interpretable configuration does.

Each stack is one layer returning (residual, forecast), so `stack_forecasts` reads a stack's
forecast by name from a built or loaded model, inside any wrapper (`window_norm`,
`baseline_start`); `deepcast.explain.decomposition` turns them into original units.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from deepcast import _backend
from deepcast.errors import ConfigError
from deepcast.models.registry import core_model
from deepcast.models.spec import ModelSpec, Option

INTERPRETABLE = ("trend", "seasonality")
GENERIC = ("generic_1", "generic_2")

STACK_TYPES = Option(
    "stack_types",
    str,
    "interpretable",
    "interpretable: a trend and a seasonality stack; generic: two learned-basis stacks",
    choices=("interpretable", "generic"),
)
BLOCKS = Option("blocks", int, 3, "blocks per stack", low=1, search={"low": 1, "high": 4})
UNITS = Option(
    "units",
    int,
    128,
    "width of each block's fully connected layers",
    low=1,
    search={"low": 32, "high": 512, "log": True},
)
LAYERS = Option(
    "layers", int, 2, "fully connected layers per block", low=1, search={"low": 1, "high": 4}
)
DEGREE = Option("degree", int, 2, "degree of the trend polynomial", low=0, high=4, search=[1, 2, 3])
HARMONICS = Option(
    "harmonics",
    int,
    4,
    "Fourier harmonics of the period (period, period/2, ..; capped at period/2)",
    low=1,
    search=[2, 4, 8],
)
PERIOD = Option(
    "period", int, 24, "rows per cycle of the seasonality basis (24: daily, hourly rows)", low=2
)
SHARE_WEIGHTS = Option(
    "share_weights",
    bool,
    True,
    "one block applied `blocks` times per stack (the paper's interpretable setting)",
    search=[True, False],
)
COVARIATES = Option(
    "covariates",
    bool,
    True,
    "covariate window flattened into every block's input (NBEATSx)",
    search=[True, False],
)


def trend_basis(degree: int, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial bases (backcast [degree + 1, L], forecast [degree + 1, H]).

    >>> trend_basis(1, 4, 2)[1]     # forecast: t = 0, 1/2
    array([[1. , 1. ],
           [0. , 0.5]])
    """
    powers = np.arange(degree + 1)[:, None]
    backcast_t = np.arange(-(lookback - 1), 1) / lookback  # (-1, 0], newest row at 0
    forecast_t = np.arange(horizon) / horizon  # [0, 1), as in the paper
    return backcast_t[None, :] ** powers, forecast_t[None, :] ** powers


def seasonality_basis(
    harmonics: int, period: int, lookback: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier bases (backcast [P, L], forecast [P, H]) over row offsets from the newest row:
    cos and sin of 2 pi k s / period for k = 1..min(harmonics, period // 2), without the sine
    at k = period / 2 (identically zero on whole rows), so P <= 2 * harmonics.

    >>> seasonality_basis(8, 4, 4, 2)[1].round(6)   # period 4: k = 1 (cos, sin), k = 2 (cos)
    array([[ 0., -1.],
           [ 1.,  0.],
           [-1.,  1.]])
    """
    ks = np.arange(1, min(harmonics, period // 2) + 1)

    def basis(offsets: np.ndarray) -> np.ndarray:
        rows = []
        for k, angle in zip(ks, 2 * np.pi * np.outer(ks, offsets) / period):  # [T] per k
            rows.append(np.cos(angle))
            if 2 * k != period:
                rows.append(np.sin(angle))
        return np.stack(rows)

    return basis(np.arange(-(lookback - 1), 1)), basis(np.arange(1, horizon + 1))


@keras.saving.register_keras_serializable(package="deepcast")
class TargetHistory(keras.layers.Layer):
    """[B, L, F] window -> [B, L]: the target column (column 0)."""

    def call(self, window):
        return window[:, :, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1])


@keras.saving.register_keras_serializable(package="deepcast")
class CovariateWindow(keras.layers.Layer):
    """[B, L, F] window -> [B, L * (F - 1)]: the covariates, flattened lag-major."""

    def call(self, window):
        _, lookback, features = window.shape
        return ops.reshape(window[:, :, 1:], (-1, lookback * (features - 1)))

    def compute_output_shape(self, input_shape):
        batch, lookback, features = input_shape
        return (batch, lookback * (features - 1))


@keras.saving.register_keras_serializable(package="deepcast")
class NBeatsBlock(keras.layers.Layer):
    """[B, L (+ covariates)] block input -> (backcast [B, L], forecast [B, H]).

    `basis` is "trend", "seasonality" (fixed bases, learned thetas) or "generic" (the thetas
    mapped to backcast and forecast by learned linear bases, folded into one Dense each).

    >>> backcast, forecast = NBeatsBlock("trend", 48, 24, units=32, layers=2)(ops.ones((4, 48)))
    >>> tuple(backcast.shape), tuple(forecast.shape)
    ((4, 48), (4, 24))
    """

    def __init__(
        self,
        basis: str,
        lookback: int,
        horizon: int,
        units: int,
        layers: int,
        degree: int = 2,
        harmonics: int = 4,
        period: int = 24,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.basis, self.lookback, self.horizon = basis, int(lookback), int(horizon)
        self.units, self.layers = int(units), int(layers)
        self.degree, self.harmonics, self.period = int(degree), int(harmonics), int(period)
        self.hidden = [
            keras.layers.Dense(self.units, activation="relu", name=f"fc_{i + 1}")
            for i in range(self.layers)
        ]
        if basis == "generic":
            sizes = (self.lookback, self.horizon)
        else:
            sizes = tuple(len(v) for v in self.bases())
        # Generic: backcast and forecast directly; fixed bases: their coefficients (no bias:
        # the bases already hold a constant, the trend's t^0). Zero start: every block begins
        # with backcast and forecast 0, so the first forecast is the training mean and the
        # residual passes through unchanged, instead of random backcasts compounding down
        # the blocks (measured: a first-epoch loss of ~37 in scaled units, against ~1).
        bias = basis == "generic"
        self.backcast_theta = keras.layers.Dense(
            sizes[0], use_bias=bias, kernel_initializer="zeros", name="backcast_theta"
        )
        self.forecast_theta = keras.layers.Dense(
            sizes[1], use_bias=bias, kernel_initializer="zeros", name="forecast_theta"
        )

    def bases(self) -> tuple[np.ndarray, np.ndarray]:
        if self.basis == "trend":
            return trend_basis(self.degree, self.lookback, self.horizon)
        if self.basis == "seasonality":
            return seasonality_basis(self.harmonics, self.period, self.lookback, self.horizon)
        raise ValueError(f"the {self.basis} block has no fixed basis")

    def build(self, input_shape):
        width = input_shape[-1]
        for dense in self.hidden:
            dense.build((None, width))
            width = self.units
        self.backcast_theta.build((None, width))
        self.forecast_theta.build((None, width))
        self.backcast_basis = self.forecast_basis = None
        if self.basis != "generic":
            # Constants, not weights: rebuilt from the config, never saved or trained.
            backcast, forecast = self.bases()
            self.backcast_basis = ops.convert_to_tensor(backcast.astype(self.compute_dtype))
            self.forecast_basis = ops.convert_to_tensor(forecast.astype(self.compute_dtype))

    def call(self, block_input):
        h = block_input
        for dense in self.hidden:
            h = dense(h)  # [B, units]
        backcast, forecast = self.backcast_theta(h), self.forecast_theta(h)
        if self.backcast_basis is not None:  # [B, P] @ [P, L] and [B, P] @ [P, H]
            backcast = ops.matmul(backcast, self.backcast_basis)
            forecast = ops.matmul(forecast, self.forecast_basis)
        return backcast, forecast

    def compute_output_spec(self, block_input):
        batch = block_input.shape[0]
        return (
            keras.KerasTensor((batch, self.lookback), dtype=self.compute_dtype),
            keras.KerasTensor((batch, self.horizon), dtype=self.compute_dtype),
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "basis": self.basis,
            "lookback": self.lookback,
            "horizon": self.horizon,
            "units": self.units,
            "layers": self.layers,
            "degree": self.degree,
            "harmonics": self.harmonics,
            "period": self.period,
        }


@keras.saving.register_keras_serializable(package="deepcast")
class NBeatsStack(keras.layers.Layer):
    """(residual [B, L], covariates [B, L * (F - 1)] or none) -> (residual [B, L], stack
    forecast [B, H]): `blocks` blocks of one basis, each reading what the previous ones left
    (the covariates unchanged), their forecasts summed. With `share_weights`, one block is
    applied `blocks` times.

    >>> residual, forecast = NBeatsStack("seasonality", 48, 24, 3, 32, 2)(ops.ones((4, 48)))
    >>> tuple(forecast.shape)
    (4, 24)
    """

    def __init__(
        self,
        basis: str,
        lookback: int,
        horizon: int,
        blocks: int,
        units: int,
        layers: int,
        degree: int = 2,
        harmonics: int = 4,
        period: int = 24,
        share_weights: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.blocks, self.share_weights = int(blocks), bool(share_weights)
        self.block_config = {
            "basis": basis,
            "lookback": int(lookback),
            "horizon": int(horizon),
            "units": int(units),
            "layers": int(layers),
            "degree": int(degree),
            "harmonics": int(harmonics),
            "period": int(period),
        }
        distinct = 1 if self.share_weights else self.blocks
        self.members = [
            NBeatsBlock(**self.block_config, name=f"block_{i + 1}") for i in range(distinct)
        ]

    def build(self, residual_shape, covariates_shape=None):
        width = residual_shape[-1] + (covariates_shape[-1] if covariates_shape else 0)
        for block in self.members:
            block.build((None, width))

    def call(self, residual, covariates=None):
        forecast = None
        for i in range(self.blocks):
            block = self.members[0 if self.share_weights else i]
            # [B, L] + [B, L * (F - 1)] -> [B, L * F]
            inputs = residual if covariates is None else ops.concatenate([residual, covariates], -1)
            backcast, block_forecast = block(inputs)  # [B, L], [B, H]
            residual = residual - backcast
            forecast = block_forecast if forecast is None else forecast + block_forecast
        return residual, forecast

    def compute_output_spec(self, residual, covariates=None):
        batch = residual.shape[0]
        return (
            keras.KerasTensor(residual.shape, dtype=self.compute_dtype),
            keras.KerasTensor((batch, self.block_config["horizon"]), dtype=self.compute_dtype),
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            **self.block_config,
            "blocks": self.blocks,
            "share_weights": self.share_weights,
        }


def build_nbeats(
    lookback: int,
    n_features: int,
    horizon: int,
    stack_types: str = "interpretable",
    blocks: int = 3,
    units: int = 128,
    layers: int = 2,
    degree: int = 2,
    harmonics: int = 4,
    period: int = 24,
    share_weights: bool = True,
    covariates: bool = True,
) -> keras.Model:
    """The nbeats family's builder.

    >>> build_nbeats(48, 3, 24).output_shape
    (None, 24)
    """
    inputs = keras.Input(shape=(lookback, n_features), name="window")
    residual = TargetHistory(name="target_history")(inputs)  # [B, L]
    extra = ()
    if covariates and n_features > 1:
        extra = (CovariateWindow(name="covariate_window")(inputs),)  # [B, L * (F - 1)]
    interpretable = stack_types == "interpretable"
    forecasts = []
    for name in INTERPRETABLE if interpretable else GENERIC:
        basis = name if interpretable else "generic"
        settings = (blocks, units, layers, degree, harmonics, period, share_weights)
        stack = NBeatsStack(basis, lookback, horizon, *settings, name=name)
        residual, forecast = stack(residual, *extra)  # [B, L], [B, H]
        forecasts.append(forecast)
    outputs = keras.layers.Add(name="forecast")(forecasts)  # [B, H]
    return keras.Model(inputs, outputs, name="deepcast_nbeats")


def stack_forecasts(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each stack's forecast, {stack name: [B, H]}, for windows `x` as the nbeats model itself
    sees them (inside `window_norm`, normalised ones); they sum to its output. `model` may be
    wrapped (`registry.core_model` finds the nbeats graph).

    >>> stack_forecasts(f.model, windows)["trend"].shape
    (n, 24)
    """
    core = core_model(model)
    stacks = [layer for layer in core.layers if isinstance(layer, NBeatsStack)]
    if not stacks:
        raise ConfigError(f"{model.name} is not an nbeats model: it has no stacks")
    return {
        stack.name: _backend.predict(keras.Model(core.inputs, stack.output[1]), x)
        for stack in stacks
    }


class NBEATS(ModelSpec):
    """Doubly residual stacks of fully connected blocks; the interpretable configuration splits
    every forecast into a trend and a seasonality component (`deepcast.explain.decomposition`).

    >>> dc.Forecaster(target="y", lookback=96, horizon=24, model=dc.models.NBEATS(units=64))
    """

    name = "nbeats"
    summary = "N-BEATS(x) (Oreshkin et al. 2020): trend + seasonality stacks, covariates in"
    options = (
        STACK_TYPES, BLOCKS, UNITS, LAYERS, DEGREE, HARMONICS, PERIOD, SHARE_WEIGHTS, COVARIATES,
    )  # fmt: skip
    # The fixed bases are functions of the forecast step: a head's [B, H * C] outputs would
    # spread one step's channels over C steps of the basis. Point forecasts only (conformal
    # intervals still apply).
    outputs = ("point",)
    # MAE, as NeuralForecast trains it: over three seeds it lowered the hold-out MAE on every
    # bundled set and protocol (vic_elec 168-24 by 9%, 336-96 by 3%, from 1.025x the ridge's to
    # 0.996x; Beijing and aapl_stock by 0.5-1%): results/defaults_nbeats_loss_three_seeds.md.
    default_loss = "mae"
    builder = staticmethod(build_nbeats)
