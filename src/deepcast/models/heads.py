"""Output heads: what a model forecasts at each step — a point, quantiles or a distribution.

Any family carries any head: the family is built for `horizon * channels` outputs, reshaped to
[B, H, channels] and passed through `HeadLayer`, which turns the raw channels into the head's
parameters in one canonical layout:

    channel 0        the location: the point forecast (the median, or the mean)
    channels 1..     positive spreads (quantile gaps, a scale), then shapes (Student-t df)

A count head (negative binomial) is the exception: channel 0 is a positive rate (the mean mu,
softplus of its raw output), channel 1 the dispersion alpha (variance mu + alpha mu^2). A
count is not standardised: a family that declares the "counts" output reads the target in its
own units, divides it by nu = 1 + the window's mean target and maps back mu = nu mu',
alpha = alpha' / sqrt(nu) (Salinas et al. 2020; window_norm.py's "mean" mode).

Spreads are taken from *differences* with channel 0 (softplus(raw_k - raw_0)), so a family
that adds the window's last value to every output (nlinear) shifts the location and leaves
the spreads alone. Everything downstream reads the layout, not the head: `window_norm` and
the target scaler shift and multiply the location, only multiply spreads (a scale is never
shifted) and leave shapes alone; the baseline start adds its baseline to the location only.

>>> head = for_loss("quantile", (0.1, 0.9))
>>> head.quantiles, head.kinds
((0.1, 0.5, 0.9), ('location', 'spread', 'spread'))
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from deepcast.errors import ConfigError

POINT_LOSSES = ("mse", "mae", "huber")
COUNT_DISTRIBUTIONS = ("negative_binomial",)  # of non-negative integers, in their own units
DISTRIBUTIONS = ("gaussian", "student_t", *COUNT_DISTRIBUTIONS)
HEAD_LOSSES = ("quantile", *DISTRIBUTIONS)
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
MIN_SPREAD = 1e-4  # in scaled units: a scale of zero has no likelihood
MIN_DF = 2.0  # Student-t degrees of freedom above 2: the variance exists
MIN_RATE = 1e-6  # a negative binomial mean of zero gives every count but 0 no likelihood


@dataclass(frozen=True)
class Head:
    """A head's name, its channels and what each channel is.

    `kind` is "point", "quantile" or one of DISTRIBUTIONS; `quantiles` (sorted, 0.5 included)
    only for "quantile". `kinds[c]` is "location", "spread" or "shape", or for a count head
    "rate" and "dispersion".
    """

    kind: str
    quantiles: tuple[float, ...] = ()

    @property
    def channels(self) -> int:
        channels = {"point": 1, "gaussian": 2, "student_t": 3, "negative_binomial": 2}
        return len(self.quantiles) if self.kind == "quantile" else channels[self.kind]

    @property
    def kinds(self) -> tuple[str, ...]:
        if self.kind == "student_t":
            return ("location", "spread", "shape")
        if self.counts:
            return ("rate", "dispersion")
        return ("location",) + ("spread",) * (self.channels - 1)

    @property
    def counts(self) -> bool:
        """Whether the head is a distribution of counts: the target stays in its own units."""
        return self.kind in COUNT_DISTRIBUTIONS

    @property
    def output(self) -> str:
        """The capability a family declares in `ModelSpec.outputs` to carry this head."""
        if self.counts:
            return "counts"
        return "distribution" if self.kind in DISTRIBUTIONS else self.kind

    @property
    def is_point(self) -> bool:
        return self.kind == "point"

    @property
    def median_index(self) -> int:
        return self.quantiles.index(0.5)

    def to_json(self) -> dict:
        return {"kind": self.kind, "quantiles": list(self.quantiles)}

    # -- numpy: parameters [..., channels] in original units -> what users read -------------
    def point(self, params: np.ndarray) -> np.ndarray:
        return params if self.is_point else params[..., 0]

    def quantile_values(self, params: np.ndarray) -> np.ndarray:
        """[..., Q] the forecast quantiles of a quantile head, ascending (never crossing)."""
        return np.asarray(_assemble_quantiles(params, self.median_index, np))

    def quantile(self, params: np.ndarray, probability: float) -> np.ndarray:
        """[...] the forecast quantile at `probability` (a quantile head must have it)."""
        if self.kind == "quantile":
            match = [i for i, q in enumerate(self.quantiles) if abs(q - probability) < 1e-9]
            if not match:
                raise ConfigError(
                    f"the model forecasts quantiles {', '.join(f'{q:g}' for q in self.quantiles)};"
                    f" the interval needs {probability:g}: fit with quantiles that include it"
                )
            return self.quantile_values(params)[..., match[0]]
        from scipy import stats

        loc, scale = params[..., 0], params[..., 1]
        if self.kind == "gaussian":
            return stats.norm.ppf(probability, loc=loc, scale=scale)
        if self.kind == "student_t":
            return stats.t.ppf(probability, params[..., 2], loc=loc, scale=scale)
        if self.counts:
            return stats.nbinom.ppf(probability, *nbinom_parameters(params))
        raise ConfigError(
            "a point forecast has no quantiles; fit with loss='quantile' or a distribution"
        )

    def sample(self, params: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """[..., n] draws from the forecast distribution (quantile heads: piecewise-linear
        inverse CDF through the quantiles, flat beyond the outer ones: a draw below the lowest
        quantile's level is that quantile)."""
        if self.kind == "gaussian":
            return rng.normal(params[..., :1], params[..., 1:2], size=params.shape[:-1] + (n,))
        if self.kind == "student_t":
            t = rng.standard_t(params[..., 2:3], size=params.shape[:-1] + (n,))
            return params[..., :1] + params[..., 1:2] * t
        if self.counts:
            n_successes, p = nbinom_parameters(params[..., None, :])
            size = params.shape[:-1] + (n,)
            return rng.negative_binomial(n_successes, p, size=size).astype(np.float64)
        if self.kind == "quantile":
            values = self.quantile_values(params)  # [..., Q]
            u = rng.uniform(0.0, 1.0, size=params.shape[:-1] + (n,))  # flat beyond the outer
            flat_v = values.reshape(-1, values.shape[-1])
            flat_u = u.reshape(-1, n)
            draws = np.stack([np.interp(r, self.quantiles, v) for r, v in zip(flat_u, flat_v)])
            return draws.reshape(u.shape)
        raise ConfigError("a point forecast has no distribution to sample")


def nbinom_parameters(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., 2] mean mu and dispersion alpha -> (n, p) of NumPy's and SciPy's negative
    binomial: n = 1 / alpha, p = 1 / (1 + alpha mu); the mean n (1 - p) / p is mu.

    >>> n, p = nbinom_parameters(np.array([4.0, 0.5]))  # mu 4, alpha 0.5: n = 2, p = 1 / 3
    """
    mu, alpha = np.asarray(params[..., 0], np.float64), np.asarray(params[..., 1], np.float64)
    return 1.0 / alpha, 1.0 / (1.0 + alpha * mu)


def for_loss(loss: str, quantiles=None) -> Head:
    """The head a training loss implies; `quantiles` only with loss="quantile" (0.5 added:
    the median is the point forecast)."""
    if loss in POINT_LOSSES:
        return Head("point")
    if loss in DISTRIBUTIONS:
        return Head(loss)
    if loss != "quantile":
        raise ConfigError(
            f"loss must be one of {', '.join(POINT_LOSSES + HEAD_LOSSES)}. Received: loss={loss!r}"
        )
    given = DEFAULT_QUANTILES if quantiles is None else quantiles
    return Head("quantile", checked_quantiles(given))


def point_loss(loss: str) -> str:
    """The point loss whose minimiser a head's location is: the median (quantile head)
    minimises the absolute error, a distribution's mean the squared error."""
    if loss == "quantile":
        return "mae"
    return "mse" if loss in DISTRIBUTIONS else loss


def checked_quantiles(quantiles) -> tuple[float, ...]:
    """Sorted, distinct (to 6 decimals) and in (0, 1), with 0.5 added."""
    expected = f"quantiles must be numbers in (0, 1). Received: quantiles={quantiles!r}"
    try:
        values = sorted({round(float(q), 6) for q in quantiles} | {0.5})
    except (TypeError, ValueError):
        raise ConfigError(expected) from None
    if not all(0.0 < q < 1.0 for q in values):  # NaN fails too
        raise ConfigError(expected)
    return tuple(values)


def from_json(data: dict | None) -> Head:
    if not data:
        return Head("point")
    return Head(data["kind"], tuple(data.get("quantiles", ())))


# -- Keras: raw channels -> canonical parameters, and the training losses ---------------------
@keras.saving.register_keras_serializable(package="deepcast")
class HeadLayer(keras.layers.Layer):
    """[B, H * C] raw outputs -> [B, H, C] parameters in the canonical layout (module doc).

    `spread_factor` multiplies every spread: 1 in training, set after it where a fitted
    distribution is recalibrated on validation data (spread_calibration.py)."""

    def __init__(self, horizon: int, kinds: tuple[str, ...], spread_factor: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.horizon, self.kinds = horizon, tuple(kinds)
        self.spread_factor = float(spread_factor)

    def call(self, raw):
        raw = ops.reshape(raw, (-1, self.horizon, len(self.kinds)))
        location = raw[..., :1]
        positive = self.kinds[0] == "rate"  # a count's mean
        parts = [ops.softplus(location) + MIN_RATE if positive else location]
        for c, kind in enumerate(self.kinds[1:], start=1):
            value = ops.softplus(raw[..., c : c + 1] - location)
            value = value + (MIN_DF if kind == "shape" else MIN_SPREAD)
            if kind == "spread" and self.spread_factor != 1.0:
                value = value * self.spread_factor
            parts.append(value)
        return ops.concatenate(parts, axis=-1)

    def compute_output_spec(self, raw):
        return keras.KerasTensor((raw.shape[0], self.horizon, len(self.kinds)), self.compute_dtype)

    def get_config(self):
        config = {**super().get_config(), "horizon": self.horizon, "kinds": list(self.kinds)}
        if self.spread_factor != 1.0:  # left out at 1: the file stays readable by older versions
            config["spread_factor"] = self.spread_factor
        return config


def with_head(core: keras.Model, head: Head, horizon: int) -> keras.Model:
    """`core` (built for horizon * channels outputs) followed by the head layer."""
    if head.is_point:
        return core
    outputs = HeadLayer(horizon, head.kinds, name=f"{head.kind}_head")(core.output)
    return keras.Model(core.inputs, outputs, name=f"{core.name}_{head.kind}")


@keras.saving.register_keras_serializable(package="deepcast")
class HeadOutput(keras.layers.Layer):
    """[B, H, C] head parameters -> [B, H]: one channel, or (with `median`) one assembled
    quantile: what an explanation of a probabilistic model explains."""

    def __init__(self, index: int, median: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.index, self.median = index, median

    def call(self, params):
        values = params if self.median is None else _assemble_quantiles(params, self.median, ops)
        return values[..., self.index]

    def compute_output_spec(self, params):
        return keras.KerasTensor(params.shape[:2], self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "index": self.index, "median": self.median}


def output_model(model: keras.Model, head: Head, output: float | str | None = None):
    """`model` reduced to [B, H]: the location (`output=None`, "mean" or "median"), a
    quantile of a quantile head (`output=0.9`) or the scale of a distribution ("scale")."""
    if head.is_point:
        if output is not None:
            raise ConfigError(f"a point forecast has one output. Received: output={output!r}")
        return model
    if output in (None, "mean", "median", "location"):
        layer = HeadOutput(0)
    elif output == "scale" and head.output == "distribution":
        layer = HeadOutput(1)
    elif (
        head.kind == "quantile"
        and isinstance(output, (int, float))
        and not isinstance(output, bool)
    ):
        match = [i for i, q in enumerate(head.quantiles) if abs(q - output) < 1e-9]
        if not match:
            raise ConfigError(
                f"output must be one of the forecast quantiles {list(head.quantiles)}. "
                f"Received: output={output!r}"
            )
        layer = HeadOutput(match[0], median=head.median_index)
    else:
        raise ConfigError(
            f"output must be None (the point), a quantile of a quantile head or 'scale' of a "
            f"distribution. Received: output={output!r} for the {head.kind} head"
        )
    return keras.Model(model.inputs, layer(model.outputs[0]), name=f"{model.name}_output")


def _assemble_quantiles(params, median: int, xp):
    """Canonical [median, gaps...] -> ascending quantiles: gaps below the median are taken
    outward from it, then those above. `xp` is numpy or keras.ops."""
    below = params[..., 1 : median + 1]  # gaps for quantiles median-1, ..., 0 (outward)
    above = params[..., median + 1 :]
    centre = params[..., :1]
    lower = centre - xp.cumsum(below, axis=-1)  # [..., median], outward order
    upper = centre + xp.cumsum(above, axis=-1)
    return xp.concatenate([xp.flip(lower, axis=-1), centre, upper], axis=-1)


def loss_function(head: Head):
    """`loss(y [B, H], params [B, H, C])`, mean over every entry, in keras.ops: used by both
    training loops."""
    if head.kind == "quantile":
        q = np.asarray(head.quantiles, dtype="float32")
        median = head.median_index

        def pinball(y, params):
            values = _assemble_quantiles(params, median, ops)
            error = ops.expand_dims(y, -1) - values
            levels = ops.convert_to_tensor(q, dtype=error.dtype)
            return ops.mean(ops.maximum(levels * error, (levels - 1.0) * error))

        return pinball
    if head.kind == "gaussian":

        def gaussian_nll(y, params):
            z = (y - params[..., 0]) / params[..., 1]
            return ops.mean(0.5 * z * z + ops.log(params[..., 1]) + 0.5 * np.log(2 * np.pi))

        return gaussian_nll
    if head.kind == "student_t":

        def student_t_nll(y, params):
            loc, scale, df = params[..., 0], params[..., 1], params[..., 2]
            z = (y - loc) / scale
            log_density = (
                _lgamma((df + 1.0) / 2.0)
                - _lgamma(df / 2.0)
                - 0.5 * ops.log(df * np.pi)
                - ops.log(scale)
                - (df + 1.0) / 2.0 * ops.log1p(z * z / df)
            )
            return -ops.mean(log_density)

        return student_t_nll
    if head.counts:

        def negative_binomial_nll(y, params):
            mu, alpha = params[..., 0], params[..., 1]
            n = 1.0 / alpha
            log_1p = ops.log1p(alpha * mu)  # -log p, with p = 1 / (1 + alpha mu)
            log_pmf = (
                _lgamma_difference(n, y)  # log Gamma(y + n) - log Gamma(n)
                - _lgamma(y + 1.0)
                - n * log_1p
                + y * (ops.log(alpha * mu) - log_1p)
            )
            return -ops.mean(log_pmf)

        return negative_binomial_nll
    raise ConfigError(f"the {head.kind} head has no likelihood loss")


def _lgamma(x):
    """log Gamma(x) for x > 0 in keras.ops (no lgamma there): Stirling's series after shifting
    x up by 6 with the recurrence Gamma(x + 1) = x Gamma(x); error below 1e-8 for x > 0."""
    shift = ops.log(x * (x + 1) * (x + 2) * (x + 3) * (x + 4) * (x + 5))
    z = x + 6.0
    series = 1.0 / (12.0 * z) - 1.0 / (360.0 * z**3) + 1.0 / (1260.0 * z**5)
    return (z - 0.5) * ops.log(z) - z + 0.5 * np.log(2 * np.pi) + series - shift


def _lgamma_difference(x, y):
    """log Gamma(x + y) - log Gamma(x) for x > 0, y >= 0 in keras.ops, without the cancellation
    of two large lgamma values when x >> y (a negative binomial's n = 1 / alpha near a Poisson):
    `_lgamma`'s series for both, subtracted term by term."""
    shift = sum(ops.log1p(y / (x + k)) for k in range(6))
    z = x + 6.0
    w = z + y
    series = lambda v: 1.0 / (12.0 * v) - 1.0 / (360.0 * v**3) + 1.0 / (1260.0 * v**5)  # noqa: E731
    stirling = (z - 0.5) * ops.log1p(y / z) + y * ops.log(w) - y
    return stirling + series(w) - series(z) - shift
