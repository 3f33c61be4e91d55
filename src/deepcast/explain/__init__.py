"""Explanations of forecasts: which lags of which features drove each prediction.

>>> from deepcast.explain import Explanation, integrated_gradients
>>> e = Explanation.from_ig(integrated_gradients(model, windows, steps=64), ["x1", "x2", "y"])
>>> e.by_cell()  # lag x feature mean |attribution|
"""

from deepcast.explain.explanation import Explanation
from deepcast.explain.integrated_gradients import IGResult, integrated_gradients

__all__ = ["Explanation", "IGResult", "integrated_gradients"]
