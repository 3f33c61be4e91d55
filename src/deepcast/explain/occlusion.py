"""Occlusion (Zeiler & Fergus 2014): slide a patch of `window` = (rows, features) cells over
the window, replace it by the baseline, and give every cell of the patch the forecast's drop

    O_i(x) = mean over patches P containing i of  f_k(x) - f_k(x with P set to the baseline).

Model-agnostic (forecasts only, no gradients), so it explains every model on every backend.
Patches start every `strides` cells along each axis, as Captum's `Occlusion(model).attribute(
x, sliding_window_shapes=window, strides=strides, baselines=b, target=k)`; a cell no patch
covers gets 0. The default (1, 1) patch occludes one cell at a time: rows x features + 1
forecasts per window.

>>> Occlusion(model, window=(3, 1)).attribute(windows).values.shape   # [n, rows, F]
"""

from __future__ import annotations

from contextlib import closing
from functools import partial

import numpy as np

from deepcast import _backend, _progress
from deepcast.errors import ConfigError
from deepcast.explain.baselines import resolve_baseline
from deepcast.explain.methods import Attribution, Method, forecasts, register


@register
class Occlusion(Method):
    name = "occlusion"
    title = "Occlusion"
    options = {"window": (1, 1), "strides": None}

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        b = resolve_baseline(baseline, inputs)  # [n, rows, F]
        masks = patch_masks(inputs.shape[1:], self.config["window"], self.config["strides"])
        n, n_patches = len(inputs), len(masks)  # masks [P, rows, F], bool
        rows = _backend.rows_per_call(self.batch_size)
        starts = range(0, n * n_patches, rows)

        def occluded():  # point r: window r // P with patch r % P set to the baseline
            for start in starts:
                window, patch = np.divmod(
                    np.arange(start, min(start + rows, n * n_patches)), n_patches
                )
                yield np.where(masks[patch], b[window], inputs[window])  # [R, rows, F]

        dropped = np.empty(n * n_patches, dtype=np.float64)
        column = partial(_backend.outputs, self.model, output_index=output_index)
        with (
            closing(_backend.map_batches(column, occluded())) as results,
            _progress.bar(len(starts), "occlusion", unit="batch", verbose=self.verbose) as bar,
        ):
            for out, start in zip(results, starts):
                dropped[start : start + len(out)] = out
                bar.update(1)
        forecast = forecasts(self.model, inputs, output_index, self.batch_size)  # [n]
        drop = forecast[:, None] - dropped.reshape(n, n_patches)  # [n, P]
        counts = masks.sum(axis=0)  # [rows, F]: patches covering each cell
        # [n, P] x [P, rows*F] -> [n, rows, F], each cell's drops summed, then averaged
        total = (drop @ masks.reshape(n_patches, -1)).reshape(inputs.shape)
        values = np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)
        return Attribution(values, baseline=b, diagnostics={"patches": n_patches})


def patch_masks(shape: tuple[int, int], window, strides=None) -> np.ndarray:
    """[P, rows, F] boolean masks of the patches, row-major in (start row, start feature)."""
    n_rows, n_features = shape
    try:
        size = tuple(int(v) for v in window)
        step = size if strides is None else tuple(int(v) for v in strides)
    except (TypeError, ValueError):
        raise ConfigError(
            f"occlusion: window and strides are (rows, features) pairs. "
            f"Received: window={window!r}, strides={strides!r}"
        ) from None
    if len(size) != 2 or len(step) != 2 or min(*size, *step) < 1:
        raise ConfigError(
            f"occlusion: window and strides are pairs of positive integers. "
            f"Received: window={window!r}, strides={strides!r}"
        )
    if size[0] > n_rows or size[1] > n_features:
        raise ConfigError(
            f"occlusion: window {size} is larger than the windows' (rows, features) "
            f"{(n_rows, n_features)}"
        )
    row_starts = range(0, n_rows - size[0] + 1, step[0])
    feature_starts = range(0, n_features - size[1] + 1, step[1])
    masks = np.zeros((len(row_starts) * len(feature_starts), n_rows, n_features), dtype=bool)
    for p, (r, f) in enumerate((r, f) for r in row_starts for f in feature_starts):
        masks[p, r : r + size[0], f : f + size[1]] = True
    return masks
