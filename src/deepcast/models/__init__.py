"""Model families behind one seam: each declares its options and capabilities once.

>>> import deepcast as dc
>>> dc.models.names()
['lstm', 'bilstm', 'cnn_lstm', 'dlinear', 'nlinear', 'transformer', 'nbeats', 'tft', 'deepar']
>>> dc.Forecaster(target="y", model=dc.models.CNNLSTM(filters=32))
>>> dc.Forecaster(target="y", model="nlinear")
"""

from deepcast.models.bilstm import BiLSTM
from deepcast.models.cnn_lstm import CNNLSTM
from deepcast.models.deepar import DeepAR
from deepcast.models.dlinear import DLinear
from deepcast.models.lstm import LSTM
from deepcast.models.nbeats import NBEATS
from deepcast.models.nlinear import NLinear
from deepcast.models.registry import (
    REGISTRY,
    SHORTHAND,
    build,
    configure,
    core_model,
    name_of,
    names,
    register,
    spec,
    unregister,
)
from deepcast.models.spec import ModelSpec, Option
from deepcast.models.tft import TFT
from deepcast.models.transformer import Transformer

for _family in (LSTM, BiLSTM, CNNLSTM, DLinear, NLinear, Transformer, NBEATS, TFT, DeepAR):
    register(_family)

__all__ = [
    "REGISTRY",
    "SHORTHAND",
    "BiLSTM",
    "CNNLSTM",
    "DeepAR",
    "DLinear",
    "LSTM",
    "NBEATS",
    "NLinear",
    "ModelSpec",
    "Option",
    "TFT",
    "Transformer",
    "build",
    "configure",
    "core_model",
    "name_of",
    "names",
    "register",
    "spec",
    "unregister",
]
