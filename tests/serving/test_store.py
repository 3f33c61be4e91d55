"""The model store: versions, atomic aliases, name checks, rollback, the CLI."""

from __future__ import annotations

import threading

import pytest

from deepcast.cli import main
from deepcast.errors import ConfigError, ModelFileError
from deepcast.serving.store import ModelStore, check_name


@pytest.fixture
def empty_store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def test_publish_numbers_versions_and_the_first_becomes_production(empty_store, served_forecaster):
    _, path = served_forecaster
    assert empty_store.publish(path, "demand") == "1"
    assert empty_store.publish(path, "demand") == "2"
    assert empty_store.versions("demand") == ["1", "2"]
    assert empty_store.alias("demand") == "1"
    version_dir = empty_store.path("demand", "2")
    assert sorted(p.name for p in version_dir.iterdir()) == [
        "forecaster.json",
        "manifest.json",
        "model.keras",
    ]
    assert not [p for p in (empty_store.root / "demand").iterdir() if p.name.startswith(".")]


def test_racing_publishers_each_get_their_own_version(empty_store, served_forecaster):
    _, path = served_forecaster
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(empty_store.publish(path, "m")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got, key=int) == ["1", "2", "3", "4"]


def test_promote_replaces_the_alias_and_rollback_returns(empty_store, served_forecaster):
    _, path = served_forecaster
    for _ in range(3):
        empty_store.publish(path, "m")
    assert empty_store.promote("m", "3") == "1"
    assert empty_store.alias("m") == "3"
    assert empty_store.rollback("m") == "1"
    assert empty_store.alias("m") == "1"
    with pytest.raises(ConfigError, match="no version '7'"):
        empty_store.promote("m", "7")
    assert empty_store.alias("m") == "1"


def test_readers_never_see_a_missing_alias(empty_store, served_forecaster):
    _, path = served_forecaster
    empty_store.publish(path, "m")
    empty_store.publish(path, "m")
    seen, stop = set(), threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(empty_store.alias("m"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(100):
            empty_store.promote("m", "2" if i % 2 else "1")
    finally:
        stop.set()
        reader.join()
    assert seen <= {"1", "2"} and None not in seen


@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".hidden", "a..b", "", "x" * 65, "a b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ConfigError, match="invalid model name"):
        check_name(name)


def test_publishing_a_broken_model_fails_naming_the_file(empty_store, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(ModelFileError, match="forecaster.json: missing"):
        empty_store.publish(broken, "m")
    assert empty_store.versions("m") == []


def test_cli_publish_promote_and_rollback(tmp_path, served_forecaster, capsys):
    _, path = served_forecaster
    store = str(tmp_path / "store")
    assert main(["publish", "--model", str(path), "--store", store, "--name", "d"]) == 0
    assert main(["publish", "--model", str(path), "--store", store, "--name", "d"]) == 0
    assert "version 2" in capsys.readouterr().out
    assert main(["promote", "--store", store, "--name", "d", "--version", "2"]) == 0
    assert ModelStore(store).alias("d") == "2"
    assert main(["promote", "--store", store, "--name", "d", "--rollback"]) == 0
    assert ModelStore(store).alias("d") == "1"
    capsys.readouterr()
    assert main(["publish", "--model", str(path), "--store", store, "--name", "../x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid model name '../x'" in err
    assert main(["promote", "--store", store, "--name", "d", "--version", "9"]) == 2
    assert "no version '9'" in capsys.readouterr().err
    assert main(["serve", "--store", str(tmp_path / "none")]) == 2
    assert "no model store" in capsys.readouterr().err
