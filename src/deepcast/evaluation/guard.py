"""Does the trained model beat its own baselines on data it was not trained on?

No training recipe is safe on every series (a drifting level, a random walk), so every fit
with validation data ends by scoring the model and the naive, seasonal-naive and ridge
baselines on the same validation windows, in the loss the model was trained on (scaled units).
A model that loses says so: one warning line, and `validation_check` in `metrics.json`.

>>> check = validation_check({"model": m, "naive": n, "linear": r}, actual, loss="mse")
>>> check.lost, check.best_baseline
(True, 'naive')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINES = ("naive", "seasonal_naive", "linear")
_LABELS = {"naive": "naive forecast", "seasonal": "seasonal naive", "linear": "ridge baseline"}


def pointwise_loss(loss: str, error: np.ndarray) -> np.ndarray:
    """The training losses of `deepcast.training.LOSSES`, element by element (numpy)."""
    error = np.asarray(error, dtype=np.float64)
    if loss == "mse":
        return error**2
    if loss == "mae":
        return np.abs(error)
    if loss == "huber":  # delta 1, as in training
        return np.where(np.abs(error) <= 1.0, 0.5 * error**2, np.abs(error) - 0.5)
    raise ValueError(f"unknown loss {loss!r}")


@dataclass(frozen=True)
class ValidationCheck:
    """Validation loss of the model and of each baseline, on the same windows."""

    loss: str
    model: float
    baselines: dict[str, float]
    windows: int

    @property
    def best_baseline(self) -> str:
        return min(self.baselines, key=self.baselines.get)

    @property
    def lost(self) -> bool:
        """Worse than the best baseline beyond float noise (a model whose gate was closed
        forecasts exactly as its baseline, and that is not a loss)."""
        best = self.baselines[self.best_baseline]
        return self.model > best + 1e-6 * abs(best) + 1e-12

    def message(self, model_name: str) -> str:
        """One line for the log: won or lost, against which baseline, by how much."""
        best = self.best_baseline
        label = _LABELS.get(best.split("_")[0], best.replace("_", " "))
        ratio = self.model / self.baselines[best] if self.baselines[best] else float("inf")
        verdict = "worse than" if self.lost else "at least as good as"
        line = (
            f"{model_name}: validation {self.loss} {self.model:.4g} is {verdict} the best "
            f"baseline ({best.replace('_', ' ')}, {self.baselines[best]:.4g}; "
            f"{ratio:.2f}x) on {self.windows} validation windows"
        )
        if self.lost:
            line += f"; its forecasts are likely worse than the {label}'s (try --model auto)"
        return line

    def to_json(self) -> dict:
        return {
            "loss": self.loss,
            "model": self.model,
            "baselines": dict(self.baselines),
            "best_baseline": self.best_baseline,
            "lost_to_baseline": self.lost,
            "windows": self.windows,
        }

    @classmethod
    def from_json(cls, data: dict) -> ValidationCheck:
        return cls(data["loss"], float(data["model"]), dict(data["baselines"]), data["windows"])


def validation_check(forecasts: dict, actual: np.ndarray, loss: str) -> ValidationCheck:
    """Score `forecasts["model"]` and every baseline forecast (each [n, H]) against `actual`.

    Keys other than "model" and "actual" that name a baseline (naive, seasonal_naive[_P],
    linear) are scored; the mean loss over every window and step is compared.
    """

    def score(forecast) -> float:
        return float(np.mean(pointwise_loss(loss, np.asarray(forecast) - actual)))

    baselines = {
        name: score(forecast)
        for name, forecast in forecasts.items()
        if name != "model" and name.startswith(BASELINES)
    }
    return ValidationCheck(loss, score(forecasts["model"]), baselines, int(len(actual)))
