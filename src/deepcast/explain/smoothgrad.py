"""SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies of the window,

    SG_i(x) = mean_s |d f_k(x + e_s) / d x_i|,   e_s ~ N(0, noise^2) per cell,

which removes the gradient's jitter between neighbouring inputs. `noise` is in scaled units
(1 = one training standard deviation). The same as Captum's
`NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=S, stdevs=noise)`
given the same noise: noisy copy r (window r // S, sample r % S) takes the next
`rows x features` draws of `numpy.random.default_rng(seed)`.

>>> SmoothGrad(model, samples=32, noise=0.2).attribute(windows).values.shape  # [n, rows, F]
"""

from __future__ import annotations

from contextlib import closing

import numpy as np

from deepcast import _backend, _progress
from deepcast.errors import ConfigError
from deepcast.explain.methods import (
    Attribution,
    Method,
    gradients,
    register,
    sum_per_window,
)


@register
class SmoothGrad(Method):
    name = "smoothgrad"
    title = "SmoothGrad"
    options = {"samples": 32, "noise": 0.2, "seed": 0}

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        samples, noise = int(self.config["samples"]), float(self.config["noise"])
        if samples < 1 or not noise >= 0:
            raise ConfigError(
                f"smoothgrad needs samples >= 1 and noise >= 0. "
                f"Received: samples={samples}, noise={noise}"
            )
        rng = np.random.default_rng(self.config["seed"])
        n = len(inputs)
        rows = _backend.rows_per_call(self.batch_size, self.model)
        starts = range(0, n * samples, rows)

        def noisy_copies():  # [R, rows, F] each, drawn in copy order
            for start in starts:
                window = np.arange(start, min(start + rows, n * samples)) // samples
                draws = rng.normal(0.0, noise, (len(window), *inputs.shape[1:]))
                yield (inputs[window] + draws).astype(np.float32)

        total = np.zeros(inputs.shape, dtype=np.float64)  # [n, rows, F]
        with (
            closing(gradients(self.model, noisy_copies(), output_index)) as results,
            _progress.bar(len(starts), "smoothgrad", unit="batch", verbose=self.verbose) as bar,
        ):
            for (_, grads), start in zip(results, starts):
                window = np.arange(start, start + len(grads)) // samples
                sum_per_window(total, window, np.abs(grads))
                bar.update(1)
        return Attribution(total / samples, diagnostics={"samples": samples, "noise": noise})
