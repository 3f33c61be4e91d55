"""Explanations of forecasts: which lags of which features drove each prediction.

Methods are a registry (`methods.py`), one file each: integrated_gradients, saliency,
gradient_x_input, smoothgrad, occlusion, shap, attention. Every one returns the same
`Explanation`; `compare` scores them on faithfulness.

>>> from deepcast.explain import Explanation, integrated_gradients
>>> e = Explanation.from_ig(integrated_gradients(model, windows, steps=64), ["x1", "x2", "y"])
>>> e.by_cell()  # lag x feature mean |attribution|
>>> dc.explain.compare(f, test, methods=["integrated_gradients", "shap", "occlusion"]).table
"""

# Each method module registers its class when imported; this order is the listing order.
# isort: off
from deepcast.explain import integrated_gradients as _integrated_gradients  # noqa: F401
from deepcast.explain import saliency as _saliency  # noqa: F401
from deepcast.explain import gradient_x_input as _gradient_x_input  # noqa: F401
from deepcast.explain import smoothgrad as _smoothgrad  # noqa: F401
from deepcast.explain import occlusion as _occlusion  # noqa: F401
from deepcast.explain import shap as _shap  # noqa: F401
from deepcast.explain import attention as _attention  # noqa: F401

# isort: on
from deepcast.explain.compare import Comparison, compare
from deepcast.explain.explanation import Explanation
from deepcast.explain.integrated_gradients import IGResult, integrated_gradients
from deepcast.explain.methods import Method, explain, names, register

__all__ = [
    "Comparison",
    "Explanation",
    "IGResult",
    "Method",
    "compare",
    "explain",
    "integrated_gradients",
    "names",
    "register",
]
