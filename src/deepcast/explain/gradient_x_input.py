"""Gradient x input (Shrikumar et al. 2016): x_i * d f_k(x) / d x_i, signed.

A first-order guess at each cell's contribution relative to an all-zero window (the training
mean in scaled space); exact for a linear model, where it equals Integrated Gradients with
the zeros baseline. The same as Captum's `InputXGradient(model).attribute(x, target=k)`.

>>> GradientXInput(model).attribute(windows).values.shape   # [n, rows, F]
"""

from __future__ import annotations

import numpy as np

from deepcast.explain.methods import Attribution, Method, gradient_map, register


@register
class GradientXInput(Method):
    name = "gradient_x_input"
    title = "Gradient x input"

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        y, grads = gradient_map(self.model, inputs, output_index, self.batch_size)  # [n, rows, F]
        return Attribution(grads * inputs, forecast=y)
