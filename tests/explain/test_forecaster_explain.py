"""Forecaster.explain end to end: shapes, lags, completeness, planted truth, faithfulness, CLI."""

import json

import numpy as np
import pytest

import deepcast as dc
from deepcast.cli import main
from deepcast.errors import ConfigError
from deepcast.explain.faithfulness import deletion_check


def test_explanation_shapes_lags_and_completeness(fitted, small_parts):
    test = small_parts[2]
    e = fitted.explain(test, steps=32, max_windows=40, horizon_step=2, verbose=False)
    assert e.values.shape == (40, 24, 3) and e.inputs.shape == (40, 24, 3)
    assert e.feature_names == ["y", "x1", "x2"]
    assert e.lags[0] == 24 and e.lags[-1] == 1 and e.horizon_step == 2
    # The newest windows, in order: the last explained window is the last one of `test`.
    np.testing.assert_allclose(
        e.inputs[-1], fitted.scaler_.transform(test[["y", "x1", "x2"]].to_numpy()[-24:])
    )
    # Completeness: attributions add up to f(x) - f(baseline) for the second forecast step.
    change = e.forecast - e.baseline_forecast
    np.testing.assert_allclose(e.values.sum(axis=(1, 2)), change, atol=5e-3 * np.abs(change).max())
    assert e.relative_gap < 0.01


def test_bad_explain_arguments_are_named(fitted, small_parts):
    with pytest.raises(ConfigError, match="horizon_step must be in 1..3"):
        fitted.explain(small_parts[2], horizon_step=4)
    with pytest.raises(ConfigError, match="unknown explanation method 'shapley'; available: "):
        fitted.explain(small_parts[2], method="shapley")
    with pytest.raises(ConfigError, match="'attention' needs a model that declares attention"):
        fitted.explain(small_parts[2], method="attention")
    with pytest.raises(ConfigError, match="occlusion has no option 'samples'"):
        fitted.explain(small_parts[2], method="occlusion", samples=3)


@pytest.fixture(scope="module")
def planted():
    """A forecaster trained well enough on the synthetic data to have learnt its drivers."""
    df, truth = dc.datasets.synthetic(n_steps=3000, seed=0, return_truth=True)
    train, val, test = dc.split(df)
    f = dc.Forecaster("y", lookback=24, units=32, layers=2, dropout=0.0, learning_rate=3e-3)
    f.fit(train, validation=val, epochs=15, verbose=False)
    return f, test, truth


def test_strongest_cells_are_the_planted_ones(planted):
    f, test, truth = planted
    e = f.explain(test, steps=32, max_windows=200, verbose=False)
    cells = e.by_cell()  # index lag, columns features
    for feature, lag in truth.cells:
        column = cells[feature]
        # The planted lag is the feature's strongest, far above its typical lag.
        assert column.idxmax() == lag, (feature, column.round(3).to_dict())
        assert column[lag] > 3 * column.drop(lag).median(), (feature, column.round(3).to_dict())


def test_deletion_of_top_cells_moves_the_forecast_more_than_random(planted):
    f, test, _ = planted
    e = f.explain(test, steps=32, max_windows=100, verbose=False)
    check = deletion_check(f.model, e, k=3, repeats=5, seed=0)
    assert check["top_k_change"] > 2 * check["random_k_change"], check
    # Independent recomputation of top_k_change: in every window the 3 cells of largest
    # |attribution| take their baseline value; the forecasts come from Keras' own predict.
    deleted = e.inputs.copy()
    for i, cells in enumerate(np.abs(e.values)):  # [L, F] per window
        top = np.unravel_index(np.argsort(cells, axis=None)[-3:], cells.shape)
        deleted[i][top] = e.baseline[i][top]
    step = e.horizon_step - 1
    before = f.model.predict(e.inputs, verbose=0)[:, step]
    after = f.model.predict(deleted, verbose=0)[:, step]
    assert check["top_k_change"] == pytest.approx(np.abs(after - before).mean(), rel=1e-4)


def test_cli_explain_writes_json_and_heatmaps(fitted, small_parts, tmp_path, capsys):
    model_dir = tmp_path / "model"
    fitted.save(model_dir)
    data = tmp_path / "test.csv"
    small_parts[2].to_csv(data)
    out = tmp_path / "explain"
    code = main(
        [
            "explain",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--out",
            str(out),
            "--steps",
            "16",
            "--max-windows",
            "20",
        ]
    )
    assert code == 0
    report = json.loads((out / "attributions.json").read_text())
    assert report["n_windows"] == 20 and report["features"] == ["y", "x1", "x2"]
    assert len(report["by_cell"]) == 24 * 3 and len(report["by_lag"]) == 24
    assert report["deletion_check"]["k"] == 5
    for png in ("attributions.png", "attributions_window.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "top 5" in capsys.readouterr().out


def test_cli_explain_with_a_corrupt_model_directory_exits_2(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "forecaster.json").write_text("{broken")
    data = tmp_path / "d.csv"
    data.write_text("timestamp,y\n2024-01-01,1\n")
    code = main(["explain", "--model", str(tmp_path / "model"), "--data", str(data)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "forecaster.json: corrupt" in err[0]


def test_ig_shap_and_occlusion_find_both_planted_cells_and_beat_random_deletion(planted):
    """The issue's goal on a model that learnt the data: precision@2 = 1 for IG, SHAP and
    occlusion; every method's deletion curve falls faster than random-cell deletion."""
    f, test, truth = planted
    c = dc.explain.compare(
        f,
        test,
        methods=["integrated_gradients", "shap", "occlusion", "saliency", "gradient_x_input"],
        truth=truth,
        max_windows=48,
        options={"integrated_gradients": {"steps": 32}, "shap": {"samples": 32}},
    )
    table = c.table
    for name in ("integrated_gradients", "shap", "occlusion"):
        assert table.loc[name, "precision_at_k"] == 1.0, table.round(3).to_string()
    assert (table.deletion_auc < table.random_deletion_auc).all(), table.round(3).to_string()
    assert (table.insertion_auc > table.random_insertion_auc).all(), table.round(3).to_string()
    # Methods that find the same cells agree on the ranking of all cells, too.
    assert c.agreement.loc["integrated_gradients", "shap"] > 0.5


def test_forecaster_explain_with_every_method_keeps_the_forecast_and_names(fitted, small_parts):
    test = small_parts[2]
    expected = fitted.model.predict(fitted._input_windows(fitted._frame(test, "t"))[-5:], verbose=0)
    for method in ("saliency", "gradient_x_input", "smoothgrad", "occlusion", "shap"):
        e = fitted.explain(test, method=method, max_windows=5, horizon_step=3)
        assert e.method == method and e.values.shape == (5, 24, 3)
        assert e.feature_names == ["y", "x1", "x2"] and e.horizon_step == 3
        np.testing.assert_allclose(e.forecast, expected[:, 2], rtol=1e-5, atol=1e-6)


def test_cli_explain_several_methods_writes_a_figure_each_and_a_comparison(
    fitted, small_parts, tmp_path, capsys
):
    model_dir = tmp_path / "model"
    fitted.save(model_dir)
    data = tmp_path / "test.csv"
    small_parts[2].to_csv(data)
    out = tmp_path / "explain"
    args = ["explain", "--model", str(model_dir), "--data", str(data), "--out", str(out)]
    code = main(
        [*args, "--method", "ig,shap,saliency,occlusion", "--steps", "8", "--max-windows", "12"]
    )
    assert code == 0
    report = json.loads((out / "attributions.json").read_text())
    names = ["integrated_gradients", "shap", "saliency", "occlusion"]
    assert list(report["methods"]) == names and report["method"] == "integrated_gradients"
    for name in names:
        entry = report["methods"][name]
        assert entry["n_windows"] == 12 and len(entry["by_cell"]) == 24 * 3
        assert (out / f"attributions_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert set(report["comparison"]["methods"]) == set(names)
    assert "completeness" in report["methods"]["integrated_gradients"]
    assert "completeness" not in report["methods"]["shap"]
    for png in ("attributions_comparison.png", "attributions_faithfulness.png", "attributions.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "shap: top 5" in printed and "faithfulness" in printed

    code = main([*args, "--method", "ig,lime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown explanation method 'lime'" in err[0]
    code = main([*args, "--method", "attention"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs a model that declares attention" in err[0]
