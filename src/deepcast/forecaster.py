"""`Forecaster`: owns the spec, the scaler and the Keras model; fit, predict, evaluate, save.

>>> import deepcast as dc
>>> df = dc.datasets.synthetic(seed=0)
>>> train, val, test = dc.split(df)
>>> f = dc.Forecaster(target="y", lookback=48).fit(train, validation=val, epochs=5)
>>> f.evaluate(test)["rmse"]
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deepcast import _backend, _params, models
from deepcast.data.encoding import FeatureEncoder, calendar_features
from deepcast.data.regularity import future_timestamps
from deepcast.data.validation import check_timestamps, validate_frame
from deepcast.data.windows import Scaler, sliding_windows, with_known_future
from deepcast.errors import ConfigError, DataError, NotFittedError
from deepcast.evaluation import baselines, metrics, scoring
from deepcast.evaluation.guard import pointwise_loss
from deepcast.models import baseline_start as start
from deepcast.models import heads
from deepcast.models import spread_calibration as spread
from deepcast.models.spec import ModelSpec
from deepcast.training import LOSSES, TrainingHistory, train
from deepcast.uncertainty import intervals
from deepcast.uncertainty.conformal import SplitConformal
from deepcast.uncertainty.scoring import interval_report

logger = logging.getLogger(__name__)

# The gate scales tried after training (Forecaster._fit_gate): 0 is the start alone.
GATE_SCALES = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))

_RULES = {
    "lookback": _params.positive_int(),
    "horizon": _params.positive_int(),
    "learning_rate": _params.positive_float(),
    "patience": _params.positive_int(),
    "lr_patience": _params.positive_int("a positive integer or None"),
    "loss": _params.Rule(str, lambda v: v in LOSSES, f"one of {', '.join(LOSSES)}, or None"),
    "window_norm": _params.Rule(bool, lambda v: True, "true or false"),
    "baseline_start": _params.Rule(bool, lambda v: True, "true or false"),
    "seed": _params.Rule(int, lambda v: v >= 0, "a non-negative integer"),
}


# Constructor arguments in order; `model` is stored as `model_spec` (`model` is the Keras model).
_PARAMS = (
    "target", "lookback", "horizon", "model_spec", "features", "units", "layers", "dropout",
    "window_norm", "baseline_start", "learning_rate", "loss", "quantiles", "patience",
    "lr_patience", "seasonal_period", "calendar", "seed", "model_options",
)  # fmt: skip


class Forecaster:
    """A deep-learning forecaster of one target column from a multivariate series.

    Inputs are the target's own history plus every other numeric column, unless `features` names
    them; boolean columns count as 0/1 and categorical ones are one-hot encoded, and
    `calendar=True` adds hour/day sine-cosine features. `window_norm=True` standardises each
    window's target by its own mean and std (and maps the forecast back), which helps when the
    level drifts between training and forecasting. `baseline_start=True` gives the network a
    frozen linear path set to whichever of the naive, seasonal-naive and ridge forecasts has the
    lowest validation loss, so the network learns what that baseline misses; if it has not
    beaten the baseline on validation data after training, the model is that baseline (the gate
    to the network is closed), so a fit never quietly ends worse than it. The model maps
    `lookback` scaled rows to `horizon` future target values (direct multi-step), trained on
    `loss` ("mse", "mae", or "huber", in scaled units; None: the family's own, else "mse"),
    stopping after `patience` epochs without a lower validation loss; `lr_patience` halves the
    learning rate after that many such epochs (needs validation data; None keeps the rate
    constant). `seasonal_period` is one period or a list (the first is primary); None infers
    them from the timestamps (hourly: 24 and 168).
    Hyperparameters are stored as given; they are checked in `fit`.
    """

    def __init__(
        self,
        target: str,
        lookback: int = 48,
        horizon: int = 1,
        model: str | ModelSpec = "lstm",
        *,
        features: list[str] | None = None,
        units: int | None = None,
        layers: int | None = None,
        dropout: float | None = None,
        window_norm: bool = False,
        baseline_start: bool = True,
        learning_rate: float = 1e-3,
        loss: str | None = None,
        quantiles: tuple[float, ...] | None = None,
        patience: int = 5,
        lr_patience: int | None = None,
        seasonal_period: int | list[int] | None = None,
        calendar: bool = False,
        seed: int = 0,
        model_options: dict | None = None,
    ):
        self.target = target
        self.lookback = lookback
        self.horizon = horizon
        self.model_spec = model
        self.features = features
        self.units = units
        self.layers = layers
        self.dropout = dropout
        self.window_norm = window_norm
        self.baseline_start = baseline_start
        self.learning_rate = learning_rate
        self.loss = loss
        self.quantiles = quantiles
        self.patience = patience
        self.lr_patience = lr_patience
        self.seasonal_period = seasonal_period
        self.calendar = calendar
        self.seed = seed
        self.model_options = dict(model_options or {})

    # -- parameters -------------------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor arguments, as plain JSON-safe values."""
        params = {
            ("model" if name == "model_spec" else name): getattr(self, name) for name in _PARAMS
        }
        model = params["model"]
        params["model"] = models.name_of(model)
        if isinstance(model, ModelSpec):  # a configured object: its options, as plain values
            params["model_options"] = {**model.config, **self.model_options}
        return params

    def check_params(self) -> None:
        """Raise ConfigError naming the first constructor argument that is out of range."""
        _params.check("Forecaster", self.get_params(), _RULES)
        if self.quantiles is not None and self.loss != "quantile":
            raise ConfigError(
                f"Forecaster: quantiles are forecast with loss='quantile'. Received: "
                f"quantiles={self.quantiles!r}, loss={self.loss!r}"
            )
        if self.head.counts and self.window_norm:  # also checks the quantiles
            raise ConfigError(
                f"Forecaster: loss={self.training_loss!r} scales each window's counts by their "
                "mean itself; window_norm standardises them. Received: window_norm=True"
            )

    @property
    def point_loss(self) -> str:
        """The loss the point forecast is judged by against the baselines (start, guard): the
        training loss, or for a head the one its location minimises (median: mae, mean: mse)."""
        return heads.point_loss(self.training_loss)

    @property
    def head(self) -> heads.Head:
        """What the model forecasts per step: a point, quantiles or a distribution (the loss
        decides; models/heads.py)."""
        return heads.for_loss(self.training_loss, self.quantiles)

    @property
    def training_loss(self) -> str:
        """`loss`; left at None, the family's own `default_loss` (lstm: "huber", nbeats
        and tft: "mae", deepar: "student_t"), else "mse". "mse" on a family without point outputs
        keeps meaning its own loss, as it did when "mse" was the default."""
        if self.loss not in (None, "mse"):
            return self.loss
        family = type(models.configure(self.model_spec))
        if self.loss is None or "point" not in family.outputs:
            return family.default_loss or "mse"
        return "mse"

    @property
    def _uses_start(self) -> bool:
        """`baseline_start`, unless the family samples its forecast from its own network
        (deepar: nothing can be added outside it)."""
        return self.baseline_start and not self.model_config_.autoregressive

    @property
    def model_name(self) -> str:
        """The model family's registry name (`"lstm"`, `"nlinear"`, ...)."""
        return models.name_of(self.model_spec)

    def configured_model(self) -> ModelSpec:
        """The model family with every option set: its own, then the `units`/`layers`/`dropout`
        shorthand, then `model_options`. ConfigError for an option the family does not have.

        >>> Forecaster("y", model="lstm", units=32).configured_model()
        LSTM(units=32, layers=2, dropout=0.1)
        """
        family = type(models.configure(self.model_spec))
        shorthand = {k: getattr(self, k) for k in models.SHORTHAND if getattr(self, k) is not None}
        for name, value in shorthand.items():
            if name not in family.option_names():
                raise ConfigError(
                    f"Forecaster: {name}={value!r} sets the model's option {name!r}, and "
                    f"{family.name} has none; its options: {', '.join(family.option_names())}"
                )
            if name in self.model_options and self.model_options[name] != value:
                raise ConfigError(
                    f"Forecaster: {name} is given twice ({name}={value!r} and "
                    f"model_options[{name!r}]={self.model_options[name]!r})"
                )
        return models.configure(self.model_spec, {**shorthand, **self.model_options})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"Forecaster({args})"

    # -- fitting ----------------------------------------------------------------------------
    def fit(
        self,
        train_data: pd.DataFrame,
        validation: pd.DataFrame | None = None,
        epochs: int = 50,
        batch_size: int = 64,
        verbose: bool | None = None,
        time_limit: float | None = None,
        warm_start: Forecaster | None = None,
    ) -> Forecaster:
        """Scale on `train_data` only, build the model and train it.

        With `validation`, early stopping on validation loss restores the best weights; its
        windows may reach back into the last `lookback` training rows, never the reverse.
        `time_limit` (seconds): no training epoch starts after it (see `training.train`).
        `warm_start`: a fitted forecaster of the same configuration and inputs whose scaling
        and weights training starts from (retraining after drift: a few hundred new rows
        adjust what the old model learned, where they could not teach it from scratch).
        """
        self.check_params()
        _params.check(
            "fit",
            {"epochs": epochs, "batch_size": batch_size},
            {"epochs": _params.positive_int(), "batch_size": _params.positive_int()},
        )
        self.model_config_ = self.configured_model()  # bad model options fail before any work
        check_timestamps(train_data, "train")
        # A family reading known-future inputs gets the calendar of its forecast steps.
        calendar = self.calendar or self.model_config_.future_inputs
        self.encoder_ = FeatureEncoder.fit(
            train_data, self.target, self.features, calendar=calendar
        )
        frame = validate_frame(
            self.encoder_.transform(train_data, "train"),
            self.target,
            self.encoder_.input_columns(self.features),
            source="train",
        )
        self.feature_names_ = list(frame.columns)  # target first, then the covariates
        self._check_counts(frame, "train")
        self._check_rows(len(frame), "train", minimum=self.lookback + self.horizon + 1)
        if warm_start is not None:
            self._check_warm_start(warm_start)
        # Warm: the old scaling, so the old weights read the inputs as they were trained to.
        self.scaler_ = warm_start.scaler_ if warm_start else self._fit_scaler(frame)
        self.seasonal_periods_ = self._seasonal_periods(frame.index)
        x, y = self._windows(frame)

        val_windows = None
        if validation is not None:
            val_frame = self._validated(validation, "validation")
            # The first validation targets are forecast from the last training rows.
            joined = pd.concat([frame.iloc[-self.lookback :], val_frame])
            val_windows = self._windows(joined)

        # The ridge first: it is scored beside the model, and may be the model's start.
        self.linear_baseline_ = baselines.LinearBaseline().fit(self._past(x), y)
        _backend.seed_everything(self.seed)
        self.model_ = models.build(
            self.model_config_,
            self.lookback,
            len(self.feature_names_),
            self.horizon,
            window_norm=self.window_norm,
            baseline_start=self._uses_start,
            head=self.head,
            future_columns=self.future_columns_,
        )
        self.start_ = self._set_start(val_windows) if self._uses_start else None
        if warm_start is not None:
            self.model_.set_weights(warm_start.model_.get_weights())
            self.start_ = warm_start.start_
        logger.info(
            "training %s on %d windows (%d validation)",
            self.model_name,
            len(x),
            0 if val_windows is None else len(val_windows[0]),
        )
        self.history_: TrainingHistory = train(
            self.model_,
            x,
            y,
            validation=val_windows,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            seed=self.seed,
            loss=self.training_loss,
            quantiles=self.head.quantiles or None,
            lr_patience=self.lr_patience,
            time_limit=time_limit,
            verbose=verbose,
        )
        self.conformal_ = None
        self.drift_reference_ = None
        if warm_start is not None and val_windows is None:  # nothing to refit it on
            spread.set_spread_factor(self.model_, spread.spread_factor(warm_start.model_))
        if val_windows is not None:
            # The trained model's validation outputs, computed once: the gate, the conformal
            # scores and the validation check all read them (a forward pass over the validation
            # windows costs as much as a tenth of an epoch or more for the larger families).
            if self.start_ is not None:
                val_outputs = self._fit_gate(val_windows)
            else:
                val_outputs = _backend.predict(self.model_, val_windows[0])
            if self._recalibrates_spread:
                self._recalibrate_spread(val_outputs, val_windows[1])
            # Conformal scores from the validation windows: intervals out of the box
            # (`calibrate` replaces them with fresher data).
            errors = self._calibrate_on(joined, outputs=val_outputs)
            self.drift_reference_ = self._drift_reference(frame, errors[:, 0])
        target = frame[self.target].to_numpy()
        self.mase_scale_ = metrics.mase_scale(target, self.seasonal_period_)
        self.train_end_ = frame.index[-1]
        self._record_preparation(train_data, frame)
        self.validation_check_ = None
        if validation is not None:
            # the forecasts at the validation windows' origins, for the check to reuse
            origins = joined.index[self.lookback - 1 : len(joined) - self.horizon]
            point = self.head.point(self._to_original(val_outputs))
            self.validation_check_ = self._validation_check(
                validation, train_data, known=pd.DataFrame(point, index=origins)
            )
            log = logger.warning if self.validation_check_.lost else logger.info
            log("%s", self.validation_check_.message(self.model_name))
        return self

    def _check_warm_start(self, other: Forecaster) -> None:
        other._check_fitted()
        mine, theirs = self.get_params(), other.get_params()
        mine["loss"], theirs["loss"] = self.training_loss, other.training_loss  # None: its own
        training_only = ("seed", "learning_rate", "patience", "lr_patience")
        differ = [k for k in mine if k not in training_only and mine[k] != theirs[k]]
        if differ or other.feature_names_ != self.feature_names_:
            what = differ[0] if differ else "inputs"
            raise ConfigError(
                f"warm_start must be a forecaster of the same configuration and inputs; "
                f"its {what} differs: {theirs.get(what, other.feature_names_)!r}"
            )

    def _set_start(self, val_windows) -> dict:
        """Copy the linear baseline with the lowest validation loss (the ridge without
        validation data) into the model's baseline path (models/baseline_start.py)."""
        forms = start.linear_baselines(
            self.lookback,
            len(self.feature_names_),
            self.horizon,
            self.seasonal_periods_,
            self.linear_baseline_,
        )
        losses = {}
        if val_windows is not None:
            x, y = val_windows
            flat = np.asarray(self._past(x), dtype=np.float64).reshape(len(x), -1)  # [n, L * F]
            for name, (coef, intercept) in forms.items():
                error = flat @ coef.T + intercept - y
                losses[name] = float(np.mean(pointwise_loss(self.point_loss, error)))
        chosen = min(losses, key=losses.get) if losses else "linear"
        start.set_baseline(self.model_, *forms[chosen])
        return {"baseline": chosen, "val_loss": losses.get(chosen), "gate_closed": False}

    def _fit_gate(self, val_windows) -> np.ndarray:
        """Shrink the network toward its start: the gate's scale in [0, 1] with the lowest
        validation loss (the forecast is linear in it, so one pass gives every candidate).
        Scale 0 closes the gate: the model then is its baseline exactly, instead of a network
        that lost to it; a scale below 1 keeps only the part of the network that generalised.
        Returns the gated model's (scaled) outputs on the validation windows."""
        x, y = val_windows
        gate = self.model_.get_layer(start.GATE).alpha
        trained_alpha = float(keras.ops.convert_to_numpy(gate))
        with_network = _backend.predict(self.model_, x)
        start.close_gate(self.model_)
        baseline = _backend.predict(self.model_, x)
        # Only the location depends on the gate: spreads of a head are equal in both.
        losses = {
            float(scale): self._training_loss(baseline + scale * (with_network - baseline), y)
            for scale in GATE_SCALES
        }
        scale = min(losses, key=losses.get)  # ties go to the smaller scale: the baseline
        gate.assign(scale * trained_alpha)
        gated = {0.0: baseline, 1.0: with_network}.get(scale)
        if gated is None:
            gated = baseline + scale * (with_network - baseline)
        self.start_.update(gate_scale=scale, gate_closed=scale == 0.0)
        if scale == 0.0:
            logger.warning(
                "%s did not beat its start, the %s, on validation (%s %.4g vs %.4g): it "
                "forecasts as that baseline",
                self.model_name,
                baselines.baseline_label(self.start_["baseline"], self.seasonal_period_),
                self.training_loss,
                losses[1.0],
                losses[0.0],
            )
        return gated

    @property
    def _recalibrates_spread(self) -> bool:
        """Whether fit and calibrate rescale the distribution's spread: for an autoregressive
        family, whose intervals are sample paths drawn from it (spread_calibration.py)."""
        return self.model_config_.autoregressive and self.head.kind in spread.LOCATION_SCALE

    def _recalibrate_spread(self, outputs: np.ndarray, y: np.ndarray) -> None:
        """Rescale the spread so that the targets `y` [N, H] of windows whose scaled model
        outputs are `outputs` [N, H, C] are the most likely, every step pooled (the outputs
        carry the current factor, so the new one composes with it). Too few targets to tell
        a scale from chance keep the factor."""
        factor = spread.spread_factor(self.model_)
        targets = int(np.isfinite(y).sum())
        if targets < spread.MIN_TARGETS:
            logger.info(
                "%s: spread x%.3f kept: %d targets, %d needed to refit it",
                self.model_name, factor, targets, spread.MIN_TARGETS,
            )  # fmt: skip
            return
        factor *= spread.fit_spread_factor(
            self.head, outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1)
        )
        spread.set_spread_factor(self.model_, factor)
        logger.info("%s: spread x%.3f, fitted on held-out targets", self.model_name, factor)

    def _training_loss(self, forecast: np.ndarray, y: np.ndarray) -> float:
        """The training loss of scaled model outputs against scaled targets, in numpy."""
        if self.head.is_point:
            return float(np.mean(pointwise_loss(self.training_loss, forecast - y)))
        tensors = (keras.ops.convert_to_tensor(a, dtype="float32") for a in (y, forecast))
        value = heads.loss_function(self.head)(*tensors)
        return float(keras.ops.convert_to_numpy(value))

    def _validation_check(
        self,
        validation: pd.DataFrame,
        history: pd.DataFrame,
        known: pd.DataFrame | None = None,
    ):
        """The model against its baselines on the validation windows, in the training loss
        and scaled units (see evaluation/guard.py); `known`: the model's forecasts there, if
        already computed (a frame indexed by origin)."""
        from deepcast.evaluation.guard import validation_check
        from deepcast.evaluation.scoring import scored_forecasts

        scored = scored_forecasts(self, validation, history, known=known)
        mean, scale = self.scaler_.mean[0], self.scaler_.scale[0]
        scaled = {
            name: (np.asarray(value) - mean) / scale
            for name, value in scored.items()
            if name not in ("frame", "origins", "times")
        }
        actual = scaled.pop("actual")
        return validation_check(scaled, actual, self.point_loss)

    # -- forecasting ------------------------------------------------------------------------
    def predict(
        self,
        data: pd.DataFrame,
        levels: list[float] | None = None,
        method: str | None = None,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Forecasts in original units: one row per forecast origin (the window's newest
        timestamp), one column per horizon step. The last row forecasts past the data's end.

        `levels` (percent, e.g. [80, 95]) adds `lo_80[t+1]`, `hi_80[t+1]`, ... per step, by
        `method` (uncertainty/intervals.py): "conformal" (the default once calibrated: fit
        with validation data or `calibrate`), "aci" (adapts as the actuals in `data` arrive),
        "mc_dropout", "quantile" or "distribution" (the model's own head).
        """
        frame = self._frame(data, "data")
        self._check_rows(len(frame), "data", minimum=self.lookback)
        x = self._input_windows(frame)
        origins = frame.index[self.lookback - 1 :].rename("origin")
        steps = [f"[t+{h}]" for h in range(1, self.horizon + 1)]
        levels = intervals.checked_levels(levels)
        if not levels:
            columns = [f"{self.target}{step}" for step in steps]
            return pd.DataFrame(self._predict_windows(x), index=origins, columns=columns)
        method = intervals.check_method(self, method or intervals.default_method(self))
        actual = self._future_actuals(frame) if method == "aci" else None
        point, bands = intervals.intervals(self, x, levels, method, actual=actual, seed=seed)
        columns = {f"{self.target}{step}": point[:, h] for h, step in enumerate(steps)}
        for level, (lo, hi) in bands.items():
            columns.update({f"lo_{level}{step}": lo[:, h] for h, step in enumerate(steps)})
            columns.update({f"hi_{level}{step}": hi[:, h] for h, step in enumerate(steps)})
        out = pd.DataFrame(columns, index=origins)
        out.attrs["interval_method"] = method
        return out

    def predict_samples(
        self, data: pd.DataFrame, n: int = 200, method: str | None = None, seed: int = 0
    ) -> np.ndarray:
        """Draws from the forecast distribution, (origins, horizon, n), original units: the
        head's distribution ("distribution", "quantile"), dropout samples ("mc_dropout"), or
        the point plus calibration residuals with a random sign ("conformal")."""
        _params.check("predict_samples", {"n": n}, {"n": _params.positive_int()})
        method = intervals.check_method(self, method or intervals.default_method(self))
        frame = self._frame(data, "data")
        self._check_rows(len(frame), "data", minimum=self.lookback)
        return intervals.samples(self, self._input_windows(frame), n, method, seed)

    def anomalies(self, data: pd.DataFrame, level: float = 99) -> pd.DataFrame:
        """Flag observations of `data` outside the model's one-step-ahead conformal interval
        at `level` percent: one row per observation after the first `lookback` (timestamp,
        actual, expected, lo, hi, score, is_anomaly); score > 1 is outside the band
        (uncertainty/anomalies.py)."""
        from deepcast.uncertainty.anomalies import anomalies

        self._check_fitted()
        if self.future_columns_ is not None:
            # The detector re-forecasts from cleaned lookback windows it builds itself.
            raise ConfigError(
                f"anomalies is not available for {self.model_name} yet (a model with "
                "known-future inputs); flag anomalies with another family, e.g. model='lstm'"
            )
        frame = self._frame(data, "data")
        self._check_rows(len(frame), "data", minimum=self.lookback + 1)
        return anomalies(self, frame, level)

    def calibrate(self, data: pd.DataFrame, history: pd.DataFrame | None = None) -> Forecaster:
        """Store split-conformal scores from forecasts on `data` (rows the model was not
        trained on; with `history`, the rows just before it, every row of `data` is scored):
        absolute residuals per horizon step, and CQR scores for a quantile head's symmetric
        pairs. Saved with the model; `predict(..., levels=...)` then defaults to conformal.
        An autoregressive family's spread is rescaled to these rows too (as fit does on the
        validation part)."""
        self._check_fitted()
        frame = self._frame(data, "data")
        if history is not None:
            frame = pd.concat([self._frame(history, "history").iloc[-self.lookback :], frame])
        self._check_rows(len(frame), "data", minimum=self.lookback + self.horizon)
        outputs = None
        if self._recalibrates_spread:  # one forward pass: the scores read only the location
            x, y = self._windows(frame)
            outputs = _backend.predict(self.model_, x)
            self._recalibrate_spread(outputs, y)
        self._calibrate_on(frame, outputs=outputs)
        return self

    def _calibrate_on(self, frame: pd.DataFrame, outputs: np.ndarray | None = None) -> np.ndarray:
        """Conformal scores of every window of `frame` whose H targets it holds, against the
        actuals read from the frame in float64 (not back from the float32 scaled targets).
        `outputs`: the model's scaled outputs on those windows, if already computed.
        Returns the errors (actual - forecast) [N, H]."""
        x, _ = self._windows(frame)
        params = self._predict_params(x) if outputs is None else self._to_original(outputs)
        actual = self._future_actuals(frame)[: len(x)]
        pairs = intervals.quantile_pairs(self, params)
        point = self.head.point(params)
        self.conformal_ = SplitConformal.fit(actual, point, quantile_pairs=pairs)
        return actual - point

    def _drift_reference(self, frame: pd.DataFrame, one_step_errors: np.ndarray):
        """What monitoring compares live data with (monitoring/reference.py): the training
        rows of the numeric input columns and the validation one-step errors."""
        from deepcast.monitoring import DriftReference

        columns = [c for c in self.input_columns if c in frame.columns]
        period = max(self.seasonal_periods_, default=1)
        try:
            return DriftReference.build(frame[columns], one_step_errors, period)
        except DataError as exc:  # e.g. too few validation windows: no drift checks, say so
            logger.info("no drift reference: %s", exc)
            return None

    def _future_actuals(self, frame: pd.DataFrame) -> np.ndarray:
        """[origins, H]: the actual each forecast of `frame` targets, NaN past its end."""
        target = frame[self.target].to_numpy(dtype=np.float64)
        n = len(frame) - self.lookback + 1
        rows = np.arange(n)[:, None] + self.lookback + np.arange(self.horizon)[None, :]
        padded = np.concatenate([target, np.full(self.horizon, np.nan)])
        return padded[rows]

    def evaluate(
        self,
        data: pd.DataFrame,
        history: pd.DataFrame | None = None,
        levels: list[float] | None = None,
        method: str | None = None,
    ) -> dict:
        """Hold-out metrics in original units, next to the naive, seasonal-naive and linear
        baselines, all scored on the same forecast origins and targets.

        Without `history`, the first rows of `data` serve only as model input. With it (the
        rows just before `data`, e.g. train + validation), every row of `data` is forecast and
        scored, so models with different lookbacks are compared on the same targets. A
        seasonal-naive baseline per seasonal period is reported ("seasonal_naive" for the
        primary period, "seasonal_naive_<period>" for the others) when the history covers it.
        `levels` adds interval scores by `method` (as in `predict`): `coverage_80`, `width_80`,
        `winkler_80`, ..., `pinball`, `crps`, and under "intervals" the same for a seasonal
        naive with empirical-quantile intervals from `history`.
        """
        scored = self._scored_forecasts(data, history)
        result = metrics.all_metrics(scored["actual"], scored["model"], self.mase_scale_)
        result["baselines"] = scoring.baseline_scores(scored, self.mase_scale_)
        # Skill against the hardest seasonal naive (e.g. the weekly one for electricity).
        best = baselines.best_baseline(result["baselines"])
        snaive_rmse = result["baselines"][best]["rmse"]
        result["skill_vs_seasonal_naive"] = (
            1 - result["rmse"] / snaive_rmse if snaive_rmse else None
        )
        result["skill_reference"] = best
        result.update(
            n_forecasts=len(scored["origins"]),
            first_target=str(scored["times"][0]),
            horizon=self.horizon,
            seasonal_period=self.seasonal_period_,
            seasonal_periods=list(self.seasonal_periods_),
            target=self.target,
        )
        levels = intervals.checked_levels(levels)
        if levels:  # coverage_80, width_80, winkler_80, ..., pinball, crps (fractions)
            method = intervals.check_method(self, method or intervals.default_method(self))
            report = interval_report(self, scored, levels, method, history)
            result["intervals"] = report
            result.update({k: v for k, v in report.items() if k != "baselines"})
        return result

    def plot_forecast(
        self,
        data: pd.DataFrame,
        context: pd.DataFrame | None = None,
        levels: list[float] | None = None,
        method: str | None = None,
    ):
        """A figure of one-step-ahead forecasts against the actual values of `data`, with the
        tail of `context` (the rows just before `data`, e.g. the training part) for orientation
        and the seasonal-naive baseline for comparison. With `context`, every row of `data` is
        forecast, as in `evaluate(data, history=context)`. `levels` draws the intervals of
        `method` (as in `predict`) as a fan, each labelled with its measured coverage."""
        from deepcast.evaluation.plots import forecast_figure

        scored = self._scored_forecasts(data, context)
        times = scored["times"]
        rmse = {"model": metrics.rmse(scored["actual"][:, 0], scored["model"][:, 0])}
        # Context: three seasons of history up to the first forecast origin.
        history = scored["frame"].iloc[: scored["origins"][0] + 1]
        if context is not None:
            tail = self._frame(context, "context").iloc[-3 * self.seasonal_period_ :]
            history = pd.concat([tail, history[history.index > tail.index[-1]]])
        history = history.iloc[-3 * self.seasonal_period_ :]
        context_kw = {
            "context_timestamps": history.index,
            "context_actual": history[self.target].to_numpy(),
        }
        strongest = baselines.strongest_baseline(scoring.baseline_scores(scored, self.mase_scale_))
        strongest_1 = scored[strongest][:, 0]  # its one-step-ahead forecasts, as drawn
        return forecast_figure(
            times,
            scored["actual"][:, 0],
            scored["model"][:, 0],
            target_name=self.target,
            model_name=self.model_name.upper(),
            rmse=rmse["model"],
            baselines={baselines.baseline_label(strongest, self.seasonal_period_): strongest_1},
            title=f"One-step-ahead forecast of {self.target} on hold-out data",
            zoom=min(len(times), 7 * self.seasonal_period_) if len(times) > 500 else None,
            bands=self._fan(scored, levels, method),
            **context_kw,
        )

    def _fan(self, scored: dict, levels, method) -> dict:
        """{label: (lo, hi)} of the one-step intervals drawn on the forecast plot."""
        levels = intervals.checked_levels(levels)
        if not levels:
            return {}
        method = intervals.check_method(self, method or intervals.default_method(self))
        actual = scored["actual"]
        _, bands = intervals.intervals(
            self, scored["windows"], levels, method, actual=actual, seed=self.seed
        )
        fan = {}
        for level, (lo, hi) in bands.items():
            covered = np.mean((lo[:, 0] <= actual[:, 0]) & (actual[:, 0] <= hi[:, 0]))
            label = f"{level}% {method.replace('_', ' ')} interval (covers {covered:.0%})"
            fan[label] = (lo[:, 0], hi[:, 0])
        return fan

    def backtest(
        self,
        data: pd.DataFrame,
        folds: int = 5,
        *,
        retrain: bool = True,
        fold_size: int | None = None,
        val: float = 0.15,
        epochs: int = 50,
        batch_size: int = 64,
        verbose: bool | None = None,
        levels: list[float] | None = None,
        method: str | None = None,
    ):
        """Rolling-origin backtest of this configuration over expanding-window folds of
        `data`: per-fold and aggregate metrics next to the baselines (`BacktestResult`).

        Each fold trains a fresh copy on the rows before its test block (scaling refit on
        that fold's training rows), or with `retrain=False` one copy on the first fold's.
        This forecaster itself is not fitted or changed. `levels` adds interval scores per
        fold and in the aggregate (`coverage_80`, `width_80`, ...), as in `evaluate`.
        """
        from deepcast.evaluation.backtest import backtest

        return backtest(
            self,
            data,
            folds,
            retrain=retrain,
            fold_size=fold_size,
            val=val,
            epochs=epochs,
            batch_size=batch_size,
            verbose=verbose,
            levels=levels,
            method=method,
        )

    # -- explaining --------------------------------------------------------------------------
    def explain(
        self,
        data: pd.DataFrame,
        method: str = "integrated_gradients",
        steps: int = 64,
        baseline: str | float | np.ndarray = "zeros",
        horizon_step: int = 1,
        max_windows: int | None = None,
        batch_size: int = 1024,
        verbose: bool | None = None,
        output: float | str | None = None,
        **options,
    ):
        """Attribute forecasts on `data` to each (lag, feature) cell of their input windows.

        Explains the forecast for step `horizon_step` (1 = t+1) at every origin of `data`, or
        at the newest `max_windows` origins, with `method`: "integrated_gradients" (`steps`
        path points), "saliency", "gradient_x_input", "smoothgrad", "occlusion", "shap", or
        "attention" for a model that declares it (`dc.explain.names()` lists them; `options`
        go to the method, e.g. `samples=200` for shap). `baseline` is "zeros" (the training
        mean, in scaled space), "blur" (the window blurred in time) or an array. Returns an
        `Explanation`; `e.values` has shape (windows, lookback, features). With an output
        head, `output` picks what is explained: None the point forecast (median or mean), a
        forecast quantile (`output=0.9`) or a distribution's "scale".
        """
        from deepcast.explain import methods

        family = methods.resolve(method)  # ConfigError naming the methods for an unknown one
        if family.name == "integrated_gradients":
            options = {"steps": steps, **options}
        if not 1 <= horizon_step <= self.horizon:
            raise ConfigError(
                f"horizon_step must be in 1..{self.horizon}. Received: horizon_step={horizon_step}"
            )
        frame = self._frame(data, "data")
        self._check_rows(len(frame), "data", minimum=self.lookback)
        x = self._input_windows(frame)
        if max_windows is not None:
            x = x[-max_windows:]
        if self.future_columns_ is not None:
            # The forecast steps' known rows are held at their values: only the lookback rows
            # are explained, and attributions over them stay complete.
            from deepcast.explain.baselines import resolve_baseline

            past = np.asarray(self._past(x), dtype=np.float32)
            baseline = np.concatenate(
                [resolve_baseline(baseline, past), np.asarray(x[:, self.lookback :], "float32")],
                axis=1,
            )
        e = methods.explain(
            heads.output_model(self.model_, self.head, output),
            x,
            family.name,
            feature_names=self.feature_names_,
            output_index=horizon_step - 1,
            baseline=baseline,
            spec=self.model_config_,
            batch_size=batch_size,
            verbose=verbose,
            **options,
        )
        # Windows of a family that reads known-future inputs carry the forecast steps' rows
        # after the lookback rows; the explanation is of the lookback rows (lag >= 1).
        return e.first_rows(self.lookback)

    def interpret(self, data: pd.DataFrame, max_windows: int | None = None):
        """What a tft model used for its forecasts at every origin of `data`: an
        `Interpretation` with `encoder_variables` (mean selection weight per past input, by
        column name), `decoder_variables` (per known-future input) and `attention` (per
        forecast step, over lags), and `.plot()`. ConfigError for other models."""
        from deepcast.explain.interpretation import interpret

        return interpret(self, data, max_windows)

    def decompose(self, data: pd.DataFrame):
        """Split the forecasts at every origin of `data` (as `predict(data)`) into the trend and
        seasonality of an interpretable nbeats model, plus the baseline with `baseline_start`,
        in original units: a `Decomposition` (`.trend`, `.seasonality`, `.baseline`,
        `.forecast`, `.actual`, `.plot(step=1, units=None)`). ConfigError for other models."""
        from deepcast.explain.decomposition import decompose

        return decompose(self, data)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the forecaster to directory `path` atomically: `model.keras` + JSON."""
        from deepcast.persistence import save_forecaster

        return save_forecaster(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Load a forecaster saved by `save` (safe mode: no pickle, no arbitrary code)."""
        from deepcast.persistence import load_forecaster

        return load_forecaster(path, cls)

    @property
    def input_columns(self) -> list[str]:
        """The data's own columns the model reads, target first (before one-hot and calendar
        encoding; `feature_names_` lists the encoded model inputs)."""
        self._check_fitted()
        return self.encoder_.source_columns(self.feature_names_)

    @property
    def model(self) -> keras.Model:
        """The Keras model: scaled windows (n, lookback, n_features) -> (n, horizon)."""
        self._check_fitted()
        return self.model_

    # -- internals --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Forecaster is not fitted yet: call fit() or load() first")

    def _check_rows(self, n: int, source: str, minimum: int) -> None:
        if n < minimum:
            raise DataError(
                f"{source}: {n} rows are too few; lookback {self.lookback} + horizon "
                f"{self.horizon} need at least {minimum}"
            )

    def _frame(self, data: pd.DataFrame, source: str) -> pd.DataFrame:
        """Validate `data` and return exactly the fitted columns, in the fitted order. Raw rows
        (records, a time column, a finer step) are first prepared as the training rows were."""
        self._check_fitted()
        preparation = getattr(self, "preparation_", None)
        if preparation is not None:
            data = preparation.apply(data, self.target, self.input_columns[1:], source)
        return self._validated(data, source)

    def _record_preparation(self, train_data: pd.DataFrame, frame: pd.DataFrame) -> None:
        """Keep how the training rows were prepared and their fingerprint (saved with the
        model, so it forecasts from raw rows; deepcast/preparation.py)."""
        from deepcast.preparation import Preparation, fingerprint

        self.preparation_ = Preparation.record(train_data, self.input_columns)
        self.fingerprint_ = fingerprint(frame)

    def _validated(self, data: pd.DataFrame, source: str) -> pd.DataFrame:
        encoded = self.encoder_.transform(data, source)
        frame = validate_frame(encoded, self.target, self.feature_names_[1:], source=source)
        return self._check_counts(frame, source)

    def _check_counts(self, frame: pd.DataFrame, source: str) -> pd.DataFrame:
        """`frame`, or DataError naming the first row whose target is not a count (a
        non-negative integer) when the head is a count distribution."""
        if self.head.counts:
            target = frame[self.target].to_numpy()
            bad = (target < 0) | (target != np.round(target))
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(
                    f"{source}: column '{self.target}' row {row + 1} ({frame.index[row]}): "
                    f"{target[row]:g} is not a count; loss={self.training_loss!r} needs "
                    f"non-negative integers ({int(bad.sum())} such values in total)"
                )
        return frame

    def _fit_scaler(self, frame: pd.DataFrame) -> Scaler:
        """Standardise every column on the training rows, except a count target: it stays in
        its own units (the model scales each window by its mean, models/heads.py)."""
        scaler = Scaler.fit(frame.to_numpy())
        if not self.head.counts:
            return scaler
        mean, scale = scaler.mean.copy(), scaler.scale.copy()
        mean[0], scale[0] = 0.0, 1.0
        return Scaler(mean=mean, scale=scale)

    @property
    def seasonal_period_(self) -> int:
        """The primary seasonal period in rows (of the seasonal-naive baseline and MASE)."""
        return self.seasonal_periods_[0]

    def _seasonal_periods(self, index: pd.DatetimeIndex) -> list[int]:
        given = self.seasonal_period
        if given is None:
            return baselines.seasonal_periods(index)
        periods = list(given) if isinstance(given, (list, tuple)) else [given]
        for period in periods:
            if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
                raise ConfigError(
                    "seasonal_period must be a positive integer, a list of them, or None. "
                    f"Received: seasonal_period={given!r}"
                )
        if not periods:
            raise ConfigError("seasonal_period must not be an empty list")
        return [int(p) for p in periods]

    @property
    def future_columns_(self) -> list[int] | None:
        """The input columns known ahead (calendar) for a family that reads known-future
        inputs; None for every other family."""
        if not self.model_config_.future_inputs:
            return None
        calendar = set(self.encoder_.calendar_columns())
        return [i for i, name in enumerate(self.feature_names_) if name in calendar]

    def _windows(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        scaled = self.scaler_.transform(frame.to_numpy())  # [T, F], target is column 0
        x, y = sliding_windows(scaled, scaled[:, 0], self.lookback, self.horizon)
        return self._with_known_future(x, frame), y

    def _input_windows(self, frame: pd.DataFrame) -> np.ndarray:
        """Every full input window of `frame`: [T - lookback + 1, lookback, F], a view (with
        the forecast steps' known rows appended, [.., lookback + horizon, F], for a family
        that reads known-future inputs)."""
        scaled = self.scaler_.transform(frame.to_numpy())
        x = np.lib.stride_tricks.sliding_window_view(scaled, self.lookback, axis=0)
        return self._with_known_future(x.swapaxes(1, 2), frame)

    def _with_known_future(self, x: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
        columns = self.future_columns_
        if columns is None:
            return x
        steps = future_timestamps(frame.index, self.horizon, source="data")
        calendar = calendar_features(frame.index.append(steps), self.encoder_.calendar)
        names = [self.feature_names_[c] for c in columns]
        known = np.zeros((len(frame) + self.horizon, len(self.feature_names_)), np.float32)
        known[:, columns] = (calendar[names].to_numpy() - self.scaler_.mean[columns]) / (
            self.scaler_.scale[columns]
        )
        return with_known_future(x, known, self.lookback, self.horizon)

    def _past(self, x: np.ndarray) -> np.ndarray:
        """The lookback rows of windows (without any known-future rows)."""
        return x[:, : self.lookback]

    def _predict_windows(self, x: np.ndarray) -> np.ndarray:
        """Point forecasts [N, H] in original units."""
        return self.head.point(self._predict_params(x))

    def _predict_params(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs in original units: [N, H], or [N, H, C] head parameters."""
        return self._to_original(_backend.predict(self.model_, x))

    def _to_original(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled model outputs -> original units. Head parameters (channels last): the
        location is shifted and multiplied, a spread only multiplied, a shape left alone."""
        if self.head.is_point:
            return self.scaler_.inverse(scaled, column=0)
        if self.head.counts:  # the target was never scaled (_fit_scaler)
            return np.array(scaled, dtype=np.float64)
        mean, scale = self.scaler_.mean[0], self.scaler_.scale[0]
        out = np.array(scaled, dtype=np.float64)
        for c, kind in enumerate(self.head.kinds):
            if kind != "shape":
                out[..., c] *= scale
            if kind == "location":
                out[..., c] += mean
        return out

    def _scored_forecasts(self, data: pd.DataFrame, history: pd.DataFrame | None) -> dict:
        from deepcast.evaluation.scoring import scored_forecasts

        return scored_forecasts(self, data, history)
