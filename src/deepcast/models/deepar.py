"""`deepar`: autoregressive LSTM with a likelihood head (Salinas, Flunkert, Gasthaus and
Januschowski, "DeepAR: probabilistic forecasting with autoregressive recurrent networks",
IJF 2020).

Reads windows [B, lookback + horizon, F] (known_future.py). The network reads one row per time
step: the observed columns of the step before (the previous target, column 0, and the observed
covariates) and the known-future (calendar) columns of the step itself; from its state it gives
the parameters of that step's distribution:

  step t input = [observed row t-1 | calendar row t (| 1: row t-1's covariates are observed)]
  LSTM x layers (fused kernel) -> Dense -> raw [C] -> the head's parameters (heads.py)

Training is by likelihood with teacher forcing. Over the lookback every previous target is
known, so one fused LSTM pass gives the one-step distributions of rows 1 .. lookback - 1 and of
the first forecast step. Their negative log-likelihood is added to the gradient (`_with_loss`:
the training loop's loss reads only the forecast steps, so the lookback's joins through an
identity whose backward adds it; every position then counts once). The steps after the first
continue from the state with the previous step's predicted location fed back, since no future
target is an input; their unknown observed covariates are zero and the flag says so.

Forecasting is by ancestral sampling (`sample_paths`): each window's state after the lookback is
repeated once per sample path, and every step draws a value from its distribution and feeds it
to the next, all paths at once ([B * S] rows per step), with a seeded NumPy generator. Through
the Forecaster, `predict(data, levels=...)`, `predict_samples` and `evaluate(levels=...)` use
the paths (interval method "samples": the point is their median, the bounds their quantiles,
CRPS theirs); `predict(data)` without levels is the model's own deterministic forecast, the
location of each step with the previous location fed back (step 1: the median of the paths).

Counts (`loss="negative_binomial"`) are modelled as in the paper: the target stays in its own
units (the Forecaster does not standardise it), the network reads it divided by
nu = 1 + the window's mean target over the lookback (no shift), and its mean and dispersion
map back as mu = nu mu', alpha = alpha' / sqrt(nu), both for the likelihood of the lookback
rows and for the forecast (window_norm.py's "mean" mode); sample paths are counts, fed back
divided by nu.

>>> f = dc.Forecaster(target="y", lookback=48, horizon=24, model="deepar")  # Student-t head
>>> f.fit(train, validation=val).predict_samples(test, n=200).shape   # (origins, 24, 200)
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import ops

from deepcast import _backend
from deepcast.errors import ConfigError
from deepcast.models import heads
from deepcast.models.fused_lstm import FusedLSTM
from deepcast.models.spec import ModelSpec, Option
from deepcast.models.window_norm import WindowDenormalization, WindowNormalization

# The head a raw output width implies when `distribution` is not given (files saved before it).
_KINDS = {2: "gaussian", 3: "student_t"}
CHUNK_ROWS = 65536  # sample paths stepped at once: bounds memory for long horizons


@keras.saving.register_keras_serializable(package="deepcast")
class DeepARNetwork(keras.layers.Layer):
    """[B, lookback + horizon, F] windows -> [B, horizon * C] raw head outputs, step-major.

    `future_columns`: the known-future (calendar) columns; every other column is observed,
    column 0 (the target) first. `channels`: the head's channels (2 Gaussian, 3 Student t).
    `distribution`: the head (heads.DISTRIBUTIONS); None reads it from `channels`. With a count
    head the network scales the target column by nu itself (module doc).
    """

    # Rows per forecasting call (_backend.predict_rows): unlike a plain LSTM, the network
    # gains from big calls (benchmarks/predict_rows.py); this covers its FusedLSTM's 128.
    predict_rows = 1024

    def __init__(
        self,
        lookback: int,
        horizon: int,
        future_columns: list[int],
        n_features: int,
        channels: int,
        units: int = 96,
        layers: int = 2,
        dropout: float = 0.1,
        distribution: str | None = None,
        spread_factor: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.lookback, self.horizon, self.n_features = lookback, horizon, n_features
        self.future_columns = [int(c) for c in future_columns]
        self.observed = [c for c in range(n_features) if c not in self.future_columns]
        self.channels, self.units, self.n_layers, self.dropout = channels, units, layers, dropout
        # A flag tells the steps whose previous covariates are known from those fed zeros.
        self.flagged = len(self.observed) > 1
        self.distribution = distribution or _KINDS[channels]
        self.head = heads.Head(self.distribution)
        if self.head.counts:  # target / nu in, parameters * (nu, 1 / sqrt(nu)) out
            self.count_scale = WindowNormalization(lookback, mode="mean", name="count_scale")
            self.count_unscale = WindowDenormalization(self.head.kinds, name="count_unscale")
        self.lstms = [
            FusedLSTM(
                units, return_sequences=True, return_state=True, dropout=dropout, name=f"lstm_{i}"
            )
            for i in range(1, layers + 1)
        ]
        self.projection = keras.layers.Dense(channels, name="distribution")
        # the head of the sampled steps; its spread factor is set after training
        # (spread_calibration.py) and saved in this layer's config
        self.step_head = heads.HeadLayer(1, self.head.kinds, spread_factor, name="step_head")

    @property
    def input_width(self) -> int:
        return len(self.observed) + len(self.future_columns) + int(self.flagged)

    def build(self, input_shape):
        width = self.input_width
        for lstm in self.lstms:
            lstm.build((None, None, width))
            width = self.units
        self.projection.build((None, self.units))

    # -- the pieces -------------------------------------------------------------------------
    def teacher_forced_inputs(self, window):
        """[B, L + H, F] -> [B, L, D]: the inputs of steps 1 .. L (rows 1 .. L - 1 and the first
        forecast step), each the observed row before it and its own calendar row."""
        previous = ops.take(window[:, : self.lookback], self.observed, axis=2)  # [B, L, O]
        known = ops.take(window[:, 1 : self.lookback + 1], self.future_columns, axis=2)  # [B, L, K]
        parts = [previous, known]
        if self.flagged:
            parts.append(ops.ones_like(previous[..., :1]))
        return ops.concatenate(parts, axis=-1)

    def step_input(self, previous_target, known_row):
        """([R, 1] previous target, [R, K] calendar) -> [R, D] input of a step after the first:
        the previous step's covariates are unknown, so zero (and flagged 0)."""
        parts = [previous_target]
        if len(self.observed) > 1:
            unknown = ops.repeat(ops.zeros_like(previous_target), len(self.observed) - 1, axis=1)
            parts.append(unknown)  # [R, O - 1]
        parts.append(known_row)
        if self.flagged:
            parts.append(ops.zeros_like(previous_target))
        return ops.concatenate(parts, axis=-1)

    def count_stats(self, window):
        """[B, L + H, F] -> [B, 2] the statistics (0, nu) of a count head's scaling."""
        return self.count_scale(window)[1]

    def encode(self, window, training=None):
        """Teacher-forced pass: ([B, L, C] raw outputs of steps 1 .. L, states [(h, c)] of each
        layer after step L). A count head's window is in counts: it is divided by nu here."""
        if self.head.counts:
            window, _ = self.count_scale(window)  # [B, L + H, F], column 0 / nu
        x = self.teacher_forced_inputs(window)  # [B, L, D]
        states = []
        for lstm in self.lstms:
            x, h, c = lstm(x, training=training)  # [B, L, U], [B, U], [B, U]
            states.append([h, c])
        return self.raw(x), states  # [B, L, C]

    # The steps after the first call their (built) sublayers' `call` directly: Layer.__call__'s
    # bookkeeping (input flattening, casts, masks), repeated for every layer at every step, was
    # about a sixth of a training step at 40 units (benchmarks/deepar_step.py).
    def step(self, x, states, training=None):
        """One step after the first: [R, D] input, states -> ([R, C] raw, new states)."""
        new_states = []
        for lstm, state in zip(self.lstms, states):
            x, state = lstm.cell.call(x, state, training=training)  # [R, U]
            new_states.append(state)
        return self.raw(x), new_states

    def raw(self, hidden):
        """[.., U] LSTM output -> [.., C] raw head outputs. The head reads a spread (or shape)
        from raw_k - raw_0 (heads.py); here it is a projection of the state of its own, added
        to the location, so the scale does not move with the level (sigma = softplus(w h + b),
        as in the paper)."""
        out = self.projection.call(hidden)
        return ops.concatenate([out[..., :1], out[..., 1:] + out[..., :1]], axis=-1)

    def params(self, raw):
        """[R, C] raw outputs -> [R, C] distribution parameters (the head's canonical layout)."""
        return self.step_head.call(raw)[:, 0]

    def teacher_forcing_nll(self, window, raw=None):
        """Mean one-step negative log-likelihood of rows 1 .. lookback - 1 of `window`, each
        given every earlier row: the part of the training loss that the lookback adds."""
        if raw is None:
            raw, _ = self.encode(window)
        steps = self.lookback - 1
        params = self.step_head(ops.reshape(raw[:, :steps], (-1, self.channels)))  # [B*s, 1, C]
        params = ops.reshape(params, (-1, steps, self.channels))  # [B, s, C]
        if self.head.counts:  # the likelihood of the counts themselves: mu = nu mu', ...
            params = self.count_unscale(params, self.count_stats(window))
        target = window[:, 1 : self.lookback, 0]  # [B, s]
        return heads.loss_function(self.head)(target, params)

    # -- the forward pass -------------------------------------------------------------------
    def call(self, window, training=None):
        raw, states = self.encode(window, training=training)  # [B, L, C]
        outputs = [raw[:, -1]]  # [B, C]: the first forecast step
        for h in range(1, self.horizon):
            previous = self.params(outputs[-1])[:, :1]  # the predicted location (or mu')
            known = ops.take(window[:, self.lookback + h], self.future_columns, axis=1)  # [B, K]
            out, states = self.step(self.step_input(previous, known), states, training)
            outputs.append(out)
        if training:
            for lstm in self.lstms:
                lstm.cell.reset_dropout_mask()
        forecast = ops.reshape(ops.stack(outputs, axis=1), (-1, self.horizon * self.channels))
        if training and self.lookback > 1:
            weight = (self.lookback - 1) / self.horizon  # every position counts once
            forecast = _with_loss(forecast, self.teacher_forcing_nll(window, raw), weight)
        return forecast  # [B, H * C], step-major

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon * self.channels)

    def get_config(self):
        config = {
            **super().get_config(),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "future_columns": self.future_columns,
            "n_features": self.n_features,
            "channels": self.channels,
            "units": self.units,
            "layers": self.n_layers,
            "dropout": self.dropout,
            "distribution": self.distribution,
        }
        if self.step_head.spread_factor != 1.0:  # left out at 1, as in HeadLayer
            config["spread_factor"] = self.step_head.spread_factor
        return config


def _with_loss(x, loss, weight: float):
    """`x`, with `weight * loss` added to whatever is minimised through it: the value is `x`,
    the backward pass gives `x` its upstream gradient and `loss` the gradient `weight`. The
    training loops (training.py) minimise a loss of the model's output only (the lean torch
    loop never reads `Model.losses`), so this is how a loss on the inputs' own rows gets in,
    the same way on every backend."""

    @ops.custom_gradient
    def identity(x, loss):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return upstream, ops.full_like(loss, weight)

        return x * 1.0, grad

    return identity(x, loss)


def build_deepar(
    lookback: int,
    n_features: int,
    outputs: int,
    *,
    horizon: int,
    future_columns: list[int],
    units: int = 96,
    layers: int = 2,
    dropout: float = 0.1,
    distribution: str | None = None,
) -> keras.Model:
    """Windows [B, lookback + horizon, n_features] -> [B, outputs] raw outputs of a Gaussian
    (outputs = 2 * horizon) or Student-t (3 * horizon) head, or of `distribution` (the
    registry passes "negative_binomial" for a count head: windows then hold the counts).

    >>> build_deepar(48, 5, 48, horizon=24, future_columns=[3, 4]).output_shape
    (None, 48)
    """
    channels = outputs // horizon
    expected = _KINDS.get(channels) if distribution is None else distribution
    if outputs % horizon or expected is None or heads.Head(expected).channels != channels:
        raise ConfigError(
            "deepar forecasts a distribution: fit with loss='gaussian', 'student_t' or "
            f"'negative_binomial'. Received: {outputs} outputs for horizon {horizon}"
            + ("" if distribution is None else f", distribution={distribution!r}")
        )
    inputs = keras.Input(shape=(lookback + horizon, n_features), name="window")
    network = DeepARNetwork(
        lookback, horizon, future_columns, n_features, channels, units, layers, dropout,
        distribution, name="deepar",
    )  # fmt: skip
    return keras.Model(inputs, network(inputs), name="deepcast_deepar")


# -- ancestral sampling ----------------------------------------------------------------------
def _parts(model: keras.Model) -> tuple[DeepARNetwork, WindowNormalization | None]:
    """The DeepAR network inside `model`, and the window normalisation around it, if any."""
    found: dict[type, list] = {DeepARNetwork: [], WindowNormalization: []}

    def walk(layer):
        for kind in found:
            if isinstance(layer, kind):
                found[kind].append(layer)
        for inner in getattr(layer, "layers", ()) if isinstance(layer, keras.Model) else ():
            walk(inner)

    walk(model)
    if len(found[DeepARNetwork]) != 1:
        raise ConfigError(f"{model.name} is not a deepar model")
    if any(layer.name == "baseline" for layer in _all_layers(model)):
        raise ConfigError("deepar samples its own distribution: build it without baseline_start")
    norm = found[WindowNormalization]
    return found[DeepARNetwork][0], norm[0] if norm else None


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def sample_paths(model: keras.Model, x: np.ndarray, n: int = 200, seed: int = 0) -> np.ndarray:
    """[N, L + H, F] windows -> [N, H, n] sample paths in the model's output units (scaled;
    a count head's are counts, as its windows are).

    Ancestral sampling: the lookback is read once per window, then every path draws step 1
    from its distribution, feeds the draw to step 2, and so on; all paths of a chunk of
    windows step together. Deterministic for a seed (NumPy draws, same on every backend).
    """
    network, norm = _parts(model)
    x = np.asarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_ROWS // n)
    with _no_grad():
        parts = [
            _sample_chunk(network, norm, x[i : i + per_chunk], n, rng)
            for i in range(0, len(x), per_chunk)
        ]
    if not parts:
        return np.zeros((0, network.horizon, n), "float32")
    return np.concatenate(parts)


def _draw(head: heads.Head, params: np.ndarray, n: int, rng) -> np.ndarray:
    """[R, n] draws from the distributions [R, C]. Each draw is a fixed function of its own
    uniform or normal numbers (a Student t and a negative binomial by their inverse CDFs, not
    NumPy's rejection and gamma-Poisson samplers), so how much of the stream a window uses
    never depends on any window's parameters: a window's paths do not change when other
    windows of the batch do."""
    from scipy import special, stats  # scipy comes with scikit-learn; only sampling needs it

    if head.counts:  # the negative binomial's inverse CDF, as SciPy's nbinom.ppf
        u = rng.uniform(size=(len(params), n))
        return np.maximum(stats.nbinom.ppf(u, *heads.nbinom_parameters(params[:, None])), 0.0)
    loc, scale = params[:, :1], params[:, 1:2]
    if head.kind == "gaussian":
        return loc + scale * rng.standard_normal((len(params), n))
    return loc + scale * special.stdtrit(params[:, 2:3], rng.uniform(size=(len(params), n)))


def _no_grad():
    if _backend.name() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _sample_chunk(network: DeepARNetwork, norm, x: np.ndarray, n: int, rng) -> np.ndarray:
    window = ops.convert_to_tensor(x)
    counts = network.head.counts
    stats = None
    if counts:  # the network divides counts by nu itself; draws are counts, fed back / nu
        stats = network.count_stats(window)  # [B, 2]: (0, nu)
    elif norm is not None:  # sample in the network's own units, then map back
        window, stats = norm(window)

    def draw(raw, stats, size):  # [R, C] raw outputs -> [R, size] draws
        params = network.params(raw)  # [R, C]
        if counts:  # mu = nu mu', alpha = alpha' / sqrt(nu)
            params = network.count_unscale(params[:, None], stats)[:, 0]
        return _draw(network.head, ops.convert_to_numpy(params), size, rng)

    batch = len(x)
    raw, states = network.encode(window)  # [B, L, C]
    draws = [draw(raw[:, -1], stats, n)]  # [B, n]
    if network.horizon > 1:
        states = [[ops.repeat(s, n, axis=0) for s in layer] for layer in states]  # [B*n, U]
        known = ops.repeat(ops.take(window, network.future_columns, axis=2), n, axis=0)
        path_stats = None if stats is None else ops.repeat(stats, n, axis=0)  # [B*n, 2]
        nu = np.repeat(ops.convert_to_numpy(stats)[:, 1:2], n, axis=0) if counts else 1.0
        for h in range(1, network.horizon):
            previous = (draws[-1].reshape(-1, 1) / nu).astype("float32")  # [B*n, 1]
            step_input = network.step_input(
                ops.convert_to_tensor(previous), known[:, network.lookback + h]
            )
            raw, states = network.step(step_input, states)  # [B*n, C]
            draws.append(draw(raw, path_stats, 1).reshape(batch, n))
    paths = np.stack(draws, axis=1).astype(np.float32)  # [B, H, n]
    if counts or norm is None:
        return paths
    stats = ops.convert_to_numpy(stats)
    return paths * stats[:, 1:2, None] + stats[:, :1, None]


class DeepAR(ModelSpec):
    """DeepAR: an autoregressive LSTM trained by likelihood with teacher forcing; forecasts
    are sample paths (ancestral sampling). Carries a Gaussian, Student-t or (for counts,
    `loss="negative_binomial"`) negative binomial head only; a
    Forecaster left at its default loss gets the Student-t one, as DeepAR does in GluonTS and
    NeuralForecast. A fit with validation data rescales the head's spread to the validation
    part's likelihood (spread_calibration.py): on the synthetic data the 90% paths of the
    default 2 x 96 network then cover 88.5% of hold-out points (mean of 3 seeds; 80.6% without;
    benchmarks/results/deepar_coverage_calibrated_units96.md).

    >>> dc.Forecaster(target="y", horizon=24, model=dc.models.DeepAR(units=96, layers=2))
    """

    name = "deepar"
    summary = (
        "DeepAR: autoregressive LSTM, likelihood head (Student t, Gaussian, negative binomial "
        "for counts), ancestral sample paths"
    )
    options = (
        Option(
            "units",
            int,
            96,
            "LSTM units per layer",
            low=1,
            search={"low": 16, "high": 128, "log": True},
        ),
        Option("layers", int, 2, "stacked LSTM layers", low=1, search={"low": 1, "high": 3}),
        Option(
            "dropout",
            float,
            0.1,
            "input dropout of each LSTM layer",
            low=0.0,
            high=1.0,
            high_open=True,
            search={"low": 0.0, "high": 0.3},
        ),
    )
    # "counts": a negative binomial head, the target read in its own units and scaled by nu
    outputs = ("distribution", "counts")
    future_inputs = True
    dropout_sampling = True
    # Read by the Forecaster: the loss used when `loss` is left at its default (None), and
    # that the forecast is sampled from the network itself (no baseline start around it).
    default_loss = "student_t"
    autoregressive = True
    builder = staticmethod(build_deepar)
    sample_paths = staticmethod(sample_paths)
