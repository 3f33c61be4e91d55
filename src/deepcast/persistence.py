"""Save and load a fitted Forecaster: `model.keras`, `forecaster.json` and `manifest.json`.
No pickle.

A saved directory is written in a temporary sibling and renamed into place, so a crash or
Ctrl-C while saving never leaves a half-written model where a good one was. `forecaster.json`
holds what predicting needs, including how raw rows were prepared (`preparation.py`), so a
loaded forecaster forecasts from raw rows without any flags repeated; `manifest.json` says
what made the model (versions, input schema, a fingerprint of the training data, metrics) for
the model store and for people, and is never needed to predict.

>>> f.save("model"); dc.Forecaster.load("model").predict(raw_rows)
"""

from __future__ import annotations

import json
import platform
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import keras
import pandas as pd

from deepcast import _atomic, _backend, models  # models also registers the .keras layers
from deepcast._version import __version__
from deepcast.data.encoding import FeatureEncoder
from deepcast.data.windows import Scaler
from deepcast.errors import ModelFileError
from deepcast.evaluation.baselines import LinearBaseline
from deepcast.evaluation.guard import ValidationCheck
from deepcast.preparation import Preparation
from deepcast.training import TrainingHistory
from deepcast.uncertainty.conformal import SplitConformal

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
STATE_FILE = "forecaster.json"
MANIFEST_FILE = "manifest.json"
# Families whose loss left at None meant MSE when files did not yet store the loss trained on.
MSE_BEFORE_OWN_LOSS = ("lstm", "tft")


def save_forecaster(forecaster, path: str | Path) -> Path:
    forecaster._check_fitted()
    conformal = getattr(forecaster, "conformal_", None)
    reference = getattr(forecaster, "drift_reference_", None)
    state = {
        "format": FORMAT_VERSION,
        "deepcast_version": __version__,
        "saved_with_backend": _backend.name(),
        "params": forecaster.get_params(),
        # what `loss=None` resolved to when it trained: a family's own loss may change later
        "training_loss": forecaster.training_loss,
        "model_config": forecaster.model_config_.config,
        "feature_names": forecaster.feature_names_,
        "scaler": forecaster.scaler_.to_json(),
        "seasonal_periods": forecaster.seasonal_periods_,
        "encoder": forecaster.encoder_.to_json(),
        "mase_scale": forecaster.mase_scale_,
        "linear_baseline": forecaster.linear_baseline_.to_json(),
        "train_end": forecaster.train_end_.isoformat(),
        "history": forecaster.history_.to_json(),
        "start": forecaster.start_,
        "validation_check": None
        if forecaster.validation_check_ is None
        else forecaster.validation_check_.to_json(),
        "conformal": None if conformal is None else conformal.to_dict(),
        "drift_reference": None if reference is None else reference.to_json(),
        "preparation": _preparation(forecaster).to_json(),
    }
    manifest = build_manifest(forecaster)

    def fill(directory: Path) -> None:
        forecaster.model_.save(directory / MODEL_FILE)
        _atomic.write_json(directory / STATE_FILE, state)
        _atomic.write_json(directory / MANIFEST_FILE, manifest)

    return _atomic.replace_directory(path, fill)


def _drift_reference(stored: dict):
    from deepcast.monitoring import DriftReference

    return DriftReference.from_json(stored)


def load_forecaster(path: str | Path, forecaster_class):
    """A saved forecaster, rebuilt as `forecaster_class` (passed in by `Forecaster.load`,
    so this module does not import the class that imports it)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path}: no saved forecaster here (not a directory)")
    state = _read_state(path / STATE_FILE)
    model = _read_model(path / MODEL_FILE)
    try:
        params = _current_params(state["params"])
        forecaster = forecaster_class(**params)
        trained = _trained_loss(state, params)
        if forecaster.loss is None and trained not in (None, forecaster.training_loss):
            forecaster.loss = trained  # no longer its family's own loss: spell it out
        _keep_saved_options(forecaster, state.get("model_config"))
        # Saved before the model seam: the family's options follow from the params.
        forecaster.model_config_ = forecaster.configured_model()
        forecaster.feature_names_ = list(state["feature_names"])
        forecaster.scaler_ = Scaler.from_json(state["scaler"])
        # Files saved before several periods existed hold one "seasonal_period".
        periods = state.get("seasonal_periods") or [state["seasonal_period"]]
        forecaster.seasonal_periods_ = [int(p) for p in periods]
        forecaster.encoder_ = FeatureEncoder.from_json(state.get("encoder"))
        forecaster.mase_scale_ = float(state["mase_scale"])
        forecaster.linear_baseline_ = LinearBaseline.from_json(state["linear_baseline"])
        forecaster.train_end_ = pd.Timestamp(state["train_end"])
        forecaster.history_ = TrainingHistory(**state["history"])
        forecaster.start_ = state.get("start")  # absent in files saved before the start
        check = state.get("validation_check")  # absent in files saved before the guard
        forecaster.validation_check_ = None if check is None else ValidationCheck.from_json(check)
        scores = state.get("conformal")  # absent in files saved before intervals
        forecaster.conformal_ = None if scores is None else SplitConformal.from_dict(scores)
        reference = state.get("drift_reference")  # absent in files saved before monitoring
        forecaster.drift_reference_ = None if reference is None else _drift_reference(reference)
        # Absent in files saved before serving: raw rows then only need their time column.
        forecaster.preparation_ = Preparation.from_json(state.get("preparation"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path / STATE_FILE}: incomplete or invalid ({exc})") from None
    if "model_config" in state and state["model_config"] != forecaster.model_config_.config:
        raise ModelFileError(
            f"{path / STATE_FILE}: model_config {state['model_config']} does not match the "
            f"model's params {forecaster.model_config_.config}"
        )
    rows = forecaster.lookback + (
        forecaster.horizon if forecaster.model_config_.future_inputs else 0
    )
    expected = (None, rows, len(forecaster.feature_names_))  # known-future rows: known_future.py
    if tuple(model.input_shape) != expected:
        raise ModelFileError(
            f"{path / MODEL_FILE}: model input {model.input_shape} does not match "
            f"{STATE_FILE} (expected {expected})"
        )
    forecaster.model_ = model
    return forecaster


def _preparation(forecaster) -> Preparation:
    """The forecaster's recorded preparation; loaded or fitted before it existed: the
    default (timestamps and columns as they are)."""
    return getattr(forecaster, "preparation_", None) or Preparation()


def build_manifest(forecaster) -> dict:
    """What made this model, for the model store and for people: deepcast, Keras and backend
    versions, the input schema, a fingerprint of the training data, metrics, created time."""
    preparation = _preparation(forecaster)
    history = forecaster.history_
    check = forecaster.validation_check_
    return {
        "format": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "deepcast_version": __version__,
        "keras_version": keras.__version__,
        "backend": _backend.name(),
        "backend_version": _backend_version(),
        "python_version": platform.python_version(),
        "model": forecaster.model_name,
        "target": forecaster.target,
        "lookback": forecaster.lookback,
        "horizon": forecaster.horizon,
        "input_schema": {
            "time_column": preparation.time_col,
            "step": preparation.step,
            "timezone": preparation.tz,
            "columns": preparation.columns
            or {column: "number" for column in forecaster.input_columns},
        },
        "preparation": preparation.to_json(),
        "data_fingerprint": getattr(forecaster, "fingerprint_", None),
        "intervals": getattr(forecaster, "conformal_", None) is not None
        or not forecaster.head.is_point,
        "metrics": {
            "best_epoch": history.best_epoch,
            "epochs": len(history.epochs),
            "validation": None if check is None else check.to_json(),
        },
    }


def read_manifest(path: str | Path) -> dict | None:
    """The manifest of a saved forecaster directory, or None for one saved before manifests."""
    file = Path(path) / MANIFEST_FILE
    if not file.is_file():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{file}: corrupt JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{file}: not a deepcast manifest (a JSON object expected)")
    return manifest


def _backend_version() -> str | None:
    import importlib.metadata

    package = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}.get(_backend.name())
    try:
        return importlib.metadata.version(package) if package else None
    except importlib.metadata.PackageNotFoundError:
        return None


def _current_params(params: dict) -> dict:
    """Constructor arguments of today's Forecaster from a file of any deepcast version:
    before the model seam, a bidirectional LSTM was `model="lstm", bidirectional=True`;
    before the baseline start, no model had one."""
    params = dict(params)
    if params.pop("bidirectional", False) and params.get("model") == "lstm":
        params["model"] = "bilstm"
    params.setdefault("baseline_start", False)  # files from before the baseline start
    return params


def _keep_saved_options(forecaster, saved: dict | None) -> None:
    """An option the file's params left to the family's default keeps the value the model
    was built with, where that default has changed since (DeepAR's units: 40, now 96)."""
    if not saved:
        return
    given = {k for k in models.SHORTHAND if getattr(forecaster, k) is not None}
    current = forecaster.configured_model().config
    changed = {
        k: v for k, v in saved.items() if k in current and current[k] != v and k not in given
    }
    forecaster.model_options = {**changed, **forecaster.model_options}


def _trained_loss(state: dict, params: dict) -> str | None:
    """The loss the saved network trained on. Files from before it was stored: an LSTM or a
    TFT left at loss=None trained on MSE (their own losses are Huber and MAE since); None: as
    its params say."""
    if "training_loss" in state:
        return state["training_loss"]
    trained_on_mse = params.get("model") in MSE_BEFORE_OWN_LOSS and params.get("loss") is None
    return "mse" if trained_on_mse else None


def _read_state(file: Path) -> dict:
    if not file.is_file():
        raise ModelFileError(f"{file}: missing; is this a deepcast model directory?")
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{file}: corrupt JSON ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), int):
        raise ModelFileError(f"{file}: not a deepcast forecaster file (no format number)")
    if state["format"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{file}: not a deepcast format-{FORMAT_VERSION} forecaster file: it was written "
            f"in format {state['format']} by deepcast {state.get('deepcast_version', '?')}, "
            f"and this deepcast {__version__} reads format {FORMAT_VERSION}"
        )
    return state


def _read_model(file: Path) -> keras.Model:
    if not file.is_file():
        raise ModelFileError(f"{file}: missing; is this a deepcast model directory?")
    if not zipfile.is_zipfile(file):
        raise ModelFileError(f"{file}: corrupt (not a .keras archive)")
    try:
        return keras.saving.load_model(file, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{file}: cannot be loaded ({first_line})") from None
