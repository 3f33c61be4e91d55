"""What `deepcast explain` writes: every requested method's attributions, figures and, with
several methods, how they compare.

Files in `out`: `attributions.json` (the first method's fields at the top level, as a
single-method run always wrote them, and every method under "methods"; with several methods
"comparison": deletion / insertion AUC, precision@k when the planted truth is given, rank
agreement), `attributions.png` and `attributions_window.png` (the first method),
`attributions_<method>.png` per method, and with several methods
`attributions_comparison.png` (the newest forecast under every method) and
`attributions_faithfulness.png` (deletion and insertion curves); `attributions_drivers.png`
shows each feature's share of the first method's attribution through time.

>>> report = write_explanations(f, test, "runs/explain", ["ig", "shap", "occlusion"])
>>> print(summary(report))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from deepcast import _atomic
from deepcast._jsonable import plain
from deepcast.errors import ConfigError
from deepcast.explain import comparison_plots
from deepcast.explain.compare import score
from deepcast.explain.faithfulness import deletion_check
from deepcast.explain.methods import resolve
from deepcast.explain.plots import window_figure


def parse_methods(text: str | Sequence[str]) -> list[str]:
    """ "ig,shap" or ["ig", "shap"] -> registered names, in order, each once."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = list(dict.fromkeys(resolve(p).name for p in parts if str(p).strip()))
    if not names:
        raise ConfigError(f"--method names no method. Received: {text!r}")
    return names


def write_explanations(
    forecaster,
    data: pd.DataFrame,
    out: str | Path,
    methods: str | Sequence[str] = ("integrated_gradients",),
    *,
    steps: int = 64,
    max_windows: int | None = 512,
    truth=None,
    verbose: bool | None = None,
) -> dict:
    """Explain the newest `max_windows` forecasts of `data` with each method; write the files
    listed in the module docstring to `out` and return what `attributions.json` holds."""
    from deepcast.models import heads

    out = Path(out)
    names = parse_methods(methods)
    explanations = {
        name: forecaster.explain(
            data, method=name, steps=steps, max_windows=max_windows, verbose=verbose
        )
        for name in names
    }
    model = heads.output_model(forecaster.model, forecaster.head)
    windows = forecaster._input_windows(forecaster._frame(data, "data"))  # as the model reads
    if max_windows is not None:
        windows = windows[-max_windows:]
    per_method = {}
    for name, e in explanations.items():
        entry = e.to_dict()
        entry["top_cells"] = e.top_cells(10).to_dict(orient="records")
        entry["deletion_check"] = deletion_check(
            model, e, k=5, seed=forecaster.seed, windows=windows
        )
        entry["seconds"] = float(e.diagnostics["seconds"])
        per_method[name] = entry
    report = {**per_method[names[0]], "methods": per_method}
    truth_cells = None
    if len(names) > 1 or truth is not None:
        comparison = score(model, explanations, windows=windows, truth=truth, seed=forecaster.seed)
        report["comparison"] = comparison.to_dict()
        truth_cells = comparison.truth_cells
        if len(names) > 1:
            _atomic.save_figure(out / "attributions_faithfulness.png", comparison.plot())
    first = explanations[names[0]]
    _atomic.save_figure(out / "attributions.png", first.plot(truth_cells=truth_cells))
    _atomic.save_figure(
        out / "attributions_window.png", window_figure(first, len(first.values) - 1)
    )
    for name, e in explanations.items():
        _atomic.save_figure(out / f"attributions_{name}.png", e.plot(truth_cells=truth_cells))
    if len(names) > 1:
        figure = comparison_plots.methods_figure(explanations, -1, truth_cells)
        _atomic.save_figure(out / "attributions_comparison.png", figure)
    with_features = [e for e in explanations.values() if e.feature_axis]
    if with_features:
        frame = forecaster._frame(data, "data")  # origins: the newest row of each window
        n = len(with_features[0].values)
        origins = frame.index[forecaster.lookback - 1 :][-n:]
        origins = origins if len(origins) == n else None
        figure = comparison_plots.feature_time_figure(with_features[0], origins)
        _atomic.save_figure(out / "attributions_drivers.png", figure)
    _atomic.write_json(out / "attributions.json", plain(report))
    return report


def summary(report: dict, k: int = 5) -> str:
    """Each method's top cells, IG's completeness, the deletion checks and, with several
    methods, the faithfulness table: a few readable lines."""
    truth = {
        (c["feature"], c["lag"])
        for c in (report.get("comparison") or {}).get("planted_truth") or []
    }
    lines = []
    for name, entry in report["methods"].items():
        lines.append(f"{name}: top {k} (feature, lag) cells by mean |attribution|:")
        for cell in entry["top_cells"][:k]:
            mark = "  <- planted" if (cell["feature"], cell["lag"]) in truth else ""
            lines.append(
                f"  {cell['feature']:>8} lag {cell['lag']:<3} {cell['importance']:.4g}{mark}"
            )
        if "completeness" in entry:
            gap = entry["completeness"]["relative_gap_median"]
            lines.append(f"  completeness gap (median over windows): {gap:.2%}")
        d = entry["deletion_check"]
        lines.append(
            f"  deletion check, k={d['k']}: forecast moves {d['top_k_change']:.3f} when the top "
            f"cells are removed vs {d['random_k_change']:.3f} for random cells "
            f"({entry['seconds']:.2f}s)"
        )
    comparison = report.get("comparison")
    if comparison:
        lines.append("faithfulness (deletion AUC: lower is better; insertion AUC: higher):")
        for name, row in comparison["methods"].items():
            precision = row["precision_at_k"]
            found = "" if precision is None else f"  precision@{comparison['k']} {precision:.2f}"
            lines.append(
                f"  {name:>20}  deletion {row['deletion_auc']:.3f} (random "
                f"{row['random_deletion_auc']:.3f})  insertion {row['insertion_auc']:.3f}{found}"
            )
    return "\n".join(lines)


def written(report: dict) -> list[str]:
    """The files `write_explanations` wrote for `report`, for the CLI's closing line."""
    names = list(report["methods"])
    files = ["attributions.json", "attributions.png", "attributions_window.png"]
    files += [f"attributions_{name}.png" for name in names]
    if len(names) > 1:
        files += ["attributions_comparison.png", "attributions_faithfulness.png"]
    if any(m.get("feature_axis", True) for m in report["methods"].values()):
        files.append("attributions_drivers.png")
    return files
