"""SHAP values of (lag, feature) cells (Lundberg & Lee 2017), two ways.

`algorithm="gradient"` (default): expected gradients (Erion et al. 2021), the algorithm of
the `shap` package's `GradientExplainer`. For window x, draws s = 1..S pick a background
window b_s and a point t_s ~ U(0, 1) on the path from b_s to x, and

    phi_i(x) = mean_s (x_i - b_s,i) * d f_k(b_s + t_s (x - b_s)) / d x_i,

so sum_i phi_i(x) ~= f_k(x) - E_b f_k(b). The draws are shap's own: `seed` seeds a
`numpy.random.RandomState` that, window by window, draws `choice(len(background))` then
`uniform()` per sample, exactly as `GradientExplainer.shap_values(X, nsamples=S,
rseed=seed)`, so both give the same values; deepcast batches all windows' points into a few
large gradient calls on any backend instead of one small call per window.

`algorithm="permutation"`: Shapley values of the rows x features cells by antithetic
permutation sampling, the algorithm of the `shap` package's `PermutationExplainer`: each of
`permutations` random cell orders is walked forwards and backwards, adding one cell at a time
to a window whose absent cells take the background's values (the value of a set of cells is
the forecast averaged over the background windows), and each cell gets its marginal gains.
Exact for models with interactions of at most two cells; forecasts only, no gradients, so it
works for any model: 2 x permutations x (cells + 1) x background forecasts per window (the
shap package's own explainer compiles numba kernels for ~10 s first and runs one window at a
time, so deepcast batches the same walks across windows instead).

`background` is the windows absent cells are drawn from: None takes up to 64 of the
explained windows (8 for the permutation algorithm; seeded), or pass an array [m, rows, F].

>>> Shap(model, samples=100).attribute(windows).values.shape   # [n, rows, F]
"""

from __future__ import annotations

from contextlib import closing
from functools import partial

import numpy as np

from deepcast import _backend, _progress
from deepcast.errors import ConfigError
from deepcast.explain.methods import (
    Attribution,
    Method,
    forecasts,
    gradients,
    register,
    sum_per_window,
)

ALGORITHMS = ("gradient", "permutation")
#: Background windows drawn from the explained ones when none are given.
BACKGROUND_SIZE = 64


@register
class Shap(Method):
    name = "shap"
    title = "SHAP"
    options = {
        "algorithm": "gradient",
        "samples": 100,
        "background": None,
        "seed": 0,
        "permutations": 1,
    }

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        algorithm = self.config["algorithm"]
        if algorithm not in ALGORITHMS:
            raise ConfigError(
                f"shap: algorithm must be one of {ALGORITHMS}. Received: algorithm={algorithm!r}"
            )
        background = self._background(inputs)
        if algorithm == "permutation":
            values = self._permutation(inputs, background, output_index)
        else:
            values = self._expected_gradients(inputs, background, output_index)
        expected = float(forecasts(self.model, background, output_index, self.batch_size).mean())
        return Attribution(
            values,
            diagnostics={
                "algorithm": algorithm,
                "expected_value": expected,
                "background_windows": len(background),
                **(
                    {"samples": int(self.config["samples"])}
                    if algorithm == "gradient"
                    else {"permutations": int(self.config["permutations"])}
                ),
            },
        )

    def _background(self, inputs: np.ndarray) -> np.ndarray:
        given = self.config["background"]
        if given is None:
            rng = np.random.default_rng(self.config["seed"])
            size = BACKGROUND_SIZE if self.config["algorithm"] == "gradient" else 8
            if len(inputs) <= size:
                return inputs
            return inputs[np.sort(rng.choice(len(inputs), size, replace=False))]
        background = np.asarray(given, dtype=np.float32)
        if background.ndim == 2:
            background = background[None]
        if background.shape[1:] != inputs.shape[1:] or len(background) == 0:
            raise ConfigError(
                f"shap: background must be windows [m, {inputs.shape[1]}, {inputs.shape[2]}]. "
                f"Received: {background.shape}"
            )
        return background

    def _expected_gradients(self, x: np.ndarray, background: np.ndarray, k: int) -> np.ndarray:
        samples = int(self.config["samples"])
        if samples < 1:
            raise ConfigError(f"shap: samples must be >= 1. Received: samples={samples}")
        pick, t = shap_draws(len(x), samples, len(background), self.config["seed"])  # [n, S]
        pick, t = pick.reshape(-1), t.reshape(-1)  # point r: window r // S, sample r % S
        n, rows = len(x), _backend.rows_per_call(self.batch_size, self.model)
        starts = range(0, n * samples, rows)

        def points():  # [R, rows, F]: b + t (x - b)
            for start in starts:
                r = np.arange(start, min(start + rows, n * samples))
                b, w = background[pick[r]], x[r // samples]
                yield (t[r, None, None] * w + (1 - t[r, None, None]) * b).astype(np.float32)

        total = np.zeros(x.shape, dtype=np.float64)  # [n, rows, F]
        with (
            closing(gradients(self.model, points(), k)) as results,
            _progress.bar(len(starts), "shap", unit="batch", verbose=self.verbose) as bar,
        ):
            for (_, grads), start in zip(results, starts):
                r = np.arange(start, start + len(grads))
                delta = x[r // samples].astype(np.float64) - background[pick[r]]  # x - b
                sum_per_window(total, r // samples, grads * delta)
                bar.update(1)
        return total / samples

    def _permutation(self, x: np.ndarray, background: np.ndarray, k: int) -> np.ndarray:
        """Antithetic permutation sampling over cells, batched across windows."""
        n, shape = len(x), x.shape[1:]
        cells, m = int(np.prod(shape)), len(background)
        pairs = int(self.config["permutations"])
        if pairs < 1:
            raise ConfigError(f"shap: permutations must be >= 1. Received: {pairs}")
        rng = np.random.default_rng(self.config["seed"])
        orders = [rng.permutation(cells) for _ in range(n * pairs)]  # one per window and pair
        # Walk r: window r // (2 * pairs), forward (even) or reversed (odd) permutation.
        walks = [o if d == 0 else o[::-1] for o in orders for d in (0, 1)]
        flat_x, flat_b = x.reshape(n, cells), background.reshape(m, cells)
        per_walk = (cells + 1) * m  # prefixes of 0..cells cells, each over every background
        walks_per_call = max(1, _backend.rows_per_call(self.batch_size) // per_walk)
        starts = range(0, len(walks), walks_per_call)

        def points():  # [W * (cells + 1) * m, rows, F]
            for start in starts:
                chunk = []
                for r in range(start, min(start + walks_per_call, len(walks))):
                    rank = np.empty(cells, dtype=np.int64)
                    rank[walks[r]] = np.arange(cells)
                    present = rank[None, :] < np.arange(cells + 1)[:, None]  # [cells+1, cells]
                    chunk.append(
                        np.where(present[:, None, :], flat_x[r // (2 * pairs)], flat_b[None])
                    )  # [cells+1, m, cells]
                yield np.concatenate(chunk).reshape(-1, *shape).astype(np.float32)

        column = partial(_backend.outputs, self.model, output_index=k)
        out = np.concatenate(list(_backend.map_batches(column, points())))
        value = out.reshape(len(walks), cells + 1, m).mean(axis=2)  # v(first j cells of walk)
        gains = np.diff(value, axis=1)  # [walks, cells]: cell walk[j]'s marginal contribution
        phi = np.zeros((n, cells))
        for r, walk in enumerate(walks):
            phi[r // (2 * pairs), walk] += gains[r]
        return (phi / (2 * pairs)).reshape(x.shape)


def shap_draws(n: int, samples: int, n_background: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Background index and path point of every sample, [n, S] each, in shap's draw order."""
    rng = np.random.RandomState(seed)
    pick = np.empty((n, samples), dtype=np.int64)
    t = np.empty((n, samples), dtype=np.float64)
    for j in range(n):
        for s in range(samples):
            pick[j, s] = rng.choice(n_background)
            t[j, s] = rng.uniform()
    return pick, t
