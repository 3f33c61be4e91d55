"""Saliency (Simonyan, Vedaldi & Zisserman 2014): |d f_k(x) / d x_i|, how sensitive the
forecast is to each (lag, feature) cell at the window itself.

Unsigned and local: it says where a small change would move the forecast, not how much the
cell's actual value contributed (see gradient_x_input, integrated_gradients). The same as
Captum's `Saliency(model).attribute(x, target=k, abs=True)`.

>>> Saliency(model).attribute(windows, output_index=0).values.shape   # [n, rows, F]
"""

from __future__ import annotations

import numpy as np

from deepcast.explain.methods import Attribution, Method, gradient_map, register


@register
class Saliency(Method):
    name = "saliency"
    title = "Saliency |gradient|"

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        y, grads = gradient_map(self.model, inputs, output_index, self.batch_size)  # [n, rows, F]
        return Attribution(np.abs(grads), forecast=y)
