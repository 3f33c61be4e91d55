"""Data sets that need no download: the synthetic generator with planted truth, and real
series shipped with deepcast or in the optional `deepcast[datasets]` extra.

>>> import deepcast as dc
>>> df, truth = dc.datasets.synthetic(n_steps=2000, seed=1, return_truth=True)
>>> truth.cells
>>> dc.datasets.names()
['aapl_stock', 'beijing_pm25', 'vic_elec']
>>> elec = dc.datasets.load("vic_elec")
"""

from deepcast.data.datasets import EXTRA_HINT, DatasetInfo, catalogue, info, load, names
from deepcast.data.synthetic import PlantedTruth, planted_truth, synthetic

__all__ = [
    "EXTRA_HINT",
    "DatasetInfo",
    "PlantedTruth",
    "catalogue",
    "info",
    "load",
    "names",
    "planted_truth",
    "synthetic",
]
