"""Figures carry titles, labels and colourbars, and save as real PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from deepcast.explain import Explanation, integrated_gradients
from deepcast.explain.plots import heatmap_figure, window_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explanation(lstm, windows) -> Explanation:
    return Explanation.from_ig(integrated_gradients(lstm, windows, steps=8), ["x1", "x2", "y"])


def colorbar_labels(fig: Figure) -> list[str]:
    # A colourbar lives in its own axes, labelled by the colourbar's label.
    return [ax.get_ylabel() for ax in fig.axes]


def test_heatmap(explanation, tmp_path):
    fig = heatmap_figure(explanation, truth_cells=[("x1", 1), (2, 3)])
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert "Integrated Gradients" in ax.get_title() and "lag" in ax.get_xlabel()
    assert "mean |attribution|" in colorbar_labels(fig)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x1", "x2", "y"]
    # Lag 1 (the newest row) is the rightmost column.
    ticks = {t.get_text(): pos for t, pos in zip(ax.get_xticklabels(), ax.get_xticks())}
    assert ticks["1"] == len(explanation.lags) - 1 == max(ticks.values())
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image, np.abs(explanation.values).mean(axis=0).T)
    boxes = [p for p in ax.patches if not p.get_fill()]
    assert [(b.get_x() + 0.5, b.get_y() + 0.5) for b in boxes] == [(11, 0), (9, 2)]
    path = tmp_path / "heatmap.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_window(explanation, tmp_path):
    fig = window_figure(explanation, 2)
    assert f"{explanation.forecast[2]:.3f}" in fig.get_suptitle()
    assert "attribution (signed)" in colorbar_labels(fig)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_ylabel() for ax in panels] == ["x1", "x2", "y"]
    norm = panels[0].get_images()[0].norm
    assert norm.vmin == -norm.vmax  # diverging scale centred at zero
    np.testing.assert_allclose(panels[1].lines[0].get_ydata(), explanation.inputs[2, :, 1])
    path = tmp_path / "window.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
