"""The search space: defaults, JSON round trip, narrowing, CLI assignments, strict errors."""

import json

import pytest

from deepcast.errors import ConfigError, DeepcastError
from deepcast.tuning import keras_tuner_engine
from deepcast.tuning.space import (
    Choice,
    Float,
    Int,
    SearchSpace,
    check_for_model,
    default_space,
    parse_assignments,
    tunable_names,
)


def test_default_space_is_the_documented_one():
    space = default_space(24)
    assert space.names == ("units", "layers", "dropout", "learning_rate", "lookback", "batch_size")
    assert space["layers"] == Int("layers", 1, 3)
    assert space["units"] == Int("units", 16, 256, log=True)
    assert space["dropout"] == Float("dropout", 0.0, 0.5)
    assert space["learning_rate"] == Float("learning_rate", 1e-4, 1e-2, log=True)
    assert space["lookback"].values == (24, 48, 96)
    assert space["batch_size"].values == (32, 64, 128)
    assert set(space.names) <= set(tunable_names("lstm"))


def test_each_model_has_its_own_default_space_and_foreign_options_are_named():
    from deepcast.tuning.space import check_for_model

    bilstm = default_space(24, "bilstm")
    assert bilstm["units"] == Int("units", 16, 256, log=True)  # read from the family
    space = default_space(24).narrow(units=[8, 16])
    check_for_model(space, "bilstm")  # bilstm has units too
    with pytest.raises(ConfigError, match="unknown hyperparameter 'filtres'"):
        default_space(24).narrow(filtres=[8])


@pytest.mark.parametrize(
    ("period", "lookbacks"), [(24, (24, 48, 96)), (7, (14, 28, 56)), (None, (16, 32, 64))]
)
def test_default_lookbacks_follow_the_seasonal_period(period, lookbacks):
    assert default_space(period)["lookback"].values == lookbacks


def test_json_round_trip_and_file(tmp_path):
    space = default_space(24).narrow(window_norm=[False, True], units=Int("u", 8, 64, step=8))
    assert SearchSpace.from_json(space.to_json()) == space
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space.to_json()))
    assert SearchSpace.from_json(path) == space
    assert space["units"] == Int("units", 8, 64, step=8)  # renamed to its key


def test_a_file_replaces_only_the_entries_it_names(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"units": [16, 32], "batch_size": 64, "dropout": None}))
    space = SearchSpace.from_json(path, base=default_space(24))
    assert space["units"] == Choice("units", (16, 32))
    assert space.fixed() == {"batch_size": 64}
    assert "dropout" not in space
    assert space["layers"] == default_space(24)["layers"]


def test_narrow_accepts_ranges_lists_and_fixed_values():
    space = default_space(24).narrow(units=(16, 64), lookback=[24, 48], dropout=0, layers=1)
    assert space["units"] == Int("units", 16, 64, log=True)  # keeps the log setting
    assert space["lookback"] == Choice("lookback", (24, 48))
    assert space.fixed() == {"dropout": 0.0, "layers": 1}
    assert isinstance(space.fixed()["dropout"], float)
    assert space.max_value("lookback") == 48


def test_parse_assignments():
    parsed = parse_assignments(
        ["units=16:128:log", "lookback=24,48", "batch-size=64", "window_norm=true,false"]
    )
    assert parsed == {
        "units": {"low": 16, "high": 128, "log": True},
        "lookback": [24, 48],
        "batch_size": 64,
        "window_norm": [True, False],
    }
    space = default_space(24).narrow(**parsed)
    assert space["units"] == Int("units", 16, 128, log=True)
    with pytest.raises(ConfigError, match="NAME=SPEC"):
        parse_assignments(["units"])


BAD_FILES = [
    ("{not json", "not valid JSON"),
    ('["units"]', "expected a JSON object"),
    ('{"neurons": [16, 32]}', "unknown hyperparameter 'neurons'"),
    ('{"units": {"low": 16, "high": 32, "sampling": "log"}}', "\"units\": unknown key 'sampling'"),
    ('{"units": {"low": 256, "high": 16}}', '"units": low 256 is greater than high 16'),
    ('{"units": {"low": "16", "high": 32}}', '"units": low must be an integer'),
    ('{"units": {"low": 16.5, "high": 32}}', '"units": low must be an integer'),
    ('{"dropout": {"low": 0, "high": 1.5}}', '"dropout": high must be a float in \\[0, 1\\)'),
    ('{"lookback": []}', '"lookback": values must not be empty'),
    ('{"lookback": {"type": "choice"}}', '"lookback": a choice needs "values"'),
    ('{"batch_size": [32, "64"]}', '"batch_size": values must be a positive integer'),
    ('{"learning_rate": {"low": 0, "high": 0.1, "log": true}}', '"learning_rate": low must be'),
    ('{"units": {"type": "float", "low": 16, "high": 32}}', '"units": must be an int range'),
    ('{"units": {"low": 16, "high": 64, "log": true, "step": 2}}', '"units": step must be'),
    ('{"window_norm": [true, 1]}', '"window_norm": values must be true or false'),
    ('{"lookback": [24, 24]}', '"lookback": values repeat'),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_search_space_files_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "my-space.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        SearchSpace.from_json(path, base=default_space(24))
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, DeepcastError)  # the CLI turns these into exit code 2


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        SearchSpace.from_json(tmp_path / "nope.json")


def test_keras_tuner_mapping_keeps_types():
    space = default_space(24).narrow(window_norm=[False, True], batch_size=64)
    hp = keras_tuner_engine.hyperparameters(space)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {
        "layers": "Int",
        "units": "Int",
        "dropout": "Float",
        "learning_rate": "Float",
        "lookback": "Choice",
        "batch_size": "Fixed",
        "window_norm": "Boolean",
    }
    assert next(p for p in hp.space if p.name == "units").sampling == "log"
    typed = space.typed({**{p.name: p.default for p in hp.space}, "window_norm": 1})
    assert typed["window_norm"] is True and isinstance(typed["layers"], int)


def test_a_conditional_entry_round_trips_and_must_follow_its_condition():
    spec = {
        "model": ["lstm", "transformer"],
        "heads": {"type": "choice", "values": [2, 4], "when": {"model": ["transformer"]}},
    }
    space = SearchSpace.from_json(spec)
    assert SearchSpace.from_json(space.to_json()) == space
    assert space.to_json()["heads"]["when"] == {"model": ["transformer"]}
    assert space.active("heads", {"model": "transformer"})
    assert not space.active("heads", {"model": "lstm"})
    with pytest.raises(ConfigError, match="must be an entry listed before it"):
        SearchSpace.from_json({"heads": spec["heads"], "model": spec["model"]})
    with pytest.raises(ConfigError, match="transformer has no hyperparameter 'units'"):
        check_for_model(SearchSpace.from_json({**spec, "units": [8, 16]}), "lstm")
    check_for_model(space, "lstm")  # heads only for the transformer: fine
