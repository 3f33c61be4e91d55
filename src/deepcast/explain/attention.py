"""Attention weights as an explanation, for model families whose spec declares `attention`.

TFT's attention (models/tft.py) is already over window rows, per forecast step: the weights
of the explained step are the rows' weights.

The transformer attends between patches of the window (models/transformer.py), so its
weights say which stretch of time the model read, not which feature: a patch mixes all
features' rows of its time span. Per window, the weight of patch p is the attention it
receives, averaged over blocks, heads and querying patches (each query's weights sum to 1,
so the patch weights do too); a window row gets the weight of every patch that holds it,
shared by the patch's rows. The explanation has no feature axis (`feature_axis=False`):
each feature of a lag holds the lag's weight, and figures show lags only.

Attention is where the model looked, not what moved the forecast (Jain & Wallace 2019,
"Attention is not Explanation"); `compare` scores it like the other methods.

>>> Attention(model, spec=dc.models.Transformer()).attribute(windows).values.shape  # [n, rows, F]
"""

from __future__ import annotations

import numpy as np

from deepcast.errors import ConfigError
from deepcast.explain.methods import Attribution, Method, register


@register
class Attention(Method):
    name = "attention"
    title = "Attention (lags only)"
    feature_axis = False
    needs_spec = True

    @classmethod
    def unsupported(cls, spec) -> str | None:
        if spec is None or not getattr(spec, "attention", False):
            family = getattr(spec, "name", "this model")
            return (
                f"method 'attention' needs a model that declares attention (transformer); "
                f"{family} does not. Methods for every model: integrated_gradients, saliency, "
                "gradient_x_input, smoothgrad, occlusion, shap"
            )
        return None

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        scores = self.spec.attention_weights(self.model, inputs, self.batch_size)
        if "patch_len" in self.spec.config:
            per_row = self._patch_to_rows(scores, inputs.shape[1])
        elif scores.ndim == 3 and scores.shape[2] == inputs.shape[1]:
            # [n, horizon, rows]: each forecast step's attention over the window rows (TFT)
            per_row = scores[:, output_index, :]
        else:
            raise ConfigError(
                f"method 'attention': {self.spec.name}'s attention weights {scores.shape} "
                "are not mapped to window rows"
            )
        values = np.repeat(per_row[:, :, None], inputs.shape[2], axis=2)  # [n, rows, F]
        return Attribution(values)

    def _patch_to_rows(self, scores: np.ndarray, n_rows: int) -> np.ndarray:
        """Patch attention [n, layers, heads, P, P] -> row weights [n, rows]."""
        from deepcast.models.transformer import patch_rows

        # [n, layers, heads, P(query), P(key)] -> [n, P]: attention each patch receives
        received = scores.mean(axis=(1, 2, 3))
        rows = patch_rows(n_rows, self.spec.config["patch_len"], self.spec.config["stride"])
        share = np.zeros((rows.shape[0], n_rows))  # [P, rows]: a patch's weight per row
        for p, patch in enumerate(rows):
            np.add.at(share[p], patch, 1.0 / len(patch))
        return received @ share  # [n, P] @ [P, rows] -> [n, rows], sums to 1 per window
