"""Data sets that need no download: the synthetic generator with planted truth.

>>> import deepcast as dc
>>> df, truth = dc.datasets.synthetic(n_steps=2000, seed=1, return_truth=True)
>>> truth.cells
"""

from deepcast.data.synthetic import PlantedTruth, planted_truth, synthetic

__all__ = ["PlantedTruth", "planted_truth", "synthetic"]
