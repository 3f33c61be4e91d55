"""Shared by the command-line tests: a small synthetic CSV and a way to run the CLI."""

import pytest

import deepcast as dc
from deepcast.cli import main


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "series.csv"
    dc.datasets.synthetic(n_steps=700, seed=2).to_csv(path)
    return path


def run_cli(args, capsys):
    """(exit code, stdout, stderr) of `deepcast ARGS`, in this process."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err
