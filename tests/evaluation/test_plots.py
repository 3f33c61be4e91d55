"""The forecast figure: labels, legend with RMSE, and a real PNG on disk."""

import struct

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from deepcast._atomic import save_figure
from deepcast.evaluation.plots import forecast_figure


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=300, freq="h")
    y = 10 + np.sin(np.arange(300) * 2 * np.pi / 24) + rng.normal(0, 0.1, 300)
    return times, y


def _figure(series, **kwargs):
    times, y = series
    test = slice(200, None)
    actual = y[test]
    return forecast_figure(
        times[test],
        actual,
        actual + 0.5,
        context_timestamps=times[150:200],
        context_actual=y[150:200],
        target_name="load",
        units="MW",
        model_name="LSTM",
        baselines={"seasonal naive": y[176:276]},
        **kwargs,
    )


def test_figure_has_title_labels_and_rmse_legend(series):
    fig = _figure(series, rmse=1.234)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title()
    assert ax.get_xlabel() == "time"
    assert "load" in ax.get_ylabel() and "MW" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "LSTM forecast (RMSE 1.23)" in labels
    assert any(label.startswith("seasonal naive (RMSE") for label in labels)
    assert "history (context)" in labels
    assert tuple(fig.get_size_inches()) == (12, 5)


def test_rmse_is_computed_when_not_given(series):
    fig = _figure(series)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "LSTM forecast (RMSE 0.5)" in labels  # the forecast is off by exactly 0.5


def test_baseline_is_dashed_and_holdout_is_marked(series):
    ax = _figure(series).axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    assert any("forecasts begin" in text.get_text() for text in ax.texts)


def test_zoom_adds_a_detail_panel(series):
    fig = _figure(series, zoom=24)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_title() == "last 24 points"
    assert len(fig.axes[1].get_lines()[0].get_xdata()) == 24


def test_multi_step_draws_the_first_step(series):
    times, y = series
    predicted = np.column_stack([y[200:] + 1.0, y[200:] + 5.0])
    fig = forecast_figure(times[200:], y[200:], predicted, target_name="y")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "model forecast (RMSE 1)" in labels


def test_saved_png_is_valid(series, tmp_path):
    path = save_figure(tmp_path / "forecast.png", _figure(series))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR: 12 x 5 inches at 120 dpi
    assert (width, height) == (1440, 600)
    assert len(data) > 20_000
