"""deepcast: explainable deep-learning forecasting of multivariate time series.

>>> import deepcast as dc
>>> df = dc.datasets.synthetic(seed=0)
>>> train, val, test = dc.split(df, val=0.15, test=0.15)
>>> f = dc.Forecaster(target="y", lookback=48).fit(train, validation=val, epochs=20)
>>> f.evaluate(test)["rmse"]
"""

from deepcast import (
    _backend,  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
    datasets,
    explain,  # dc.explain.compare(...), dc.explain.names()
)
from deepcast._version import __version__  # noqa: F401
from deepcast.data.windows import split
from deepcast.errors import ConfigError, DataError, DeepcastError, ModelFileError, NotFittedError
from deepcast.forecaster import Forecaster
from deepcast.tuning import tune

load = Forecaster.load

__all__ = [
    "ConfigError",
    "DataError",
    "DeepcastError",
    "Forecaster",
    "ModelFileError",
    "NotFittedError",
    "datasets",
    "explain",
    "load",
    "split",
    "tune",
]
