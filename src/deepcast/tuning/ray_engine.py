"""Ray Tune engine: ASHA and population-based training, on this machine or a Ray cluster.

Each trial is Ray's function trainable around the engine-neutral objective: it reports every
epoch's validation loss (`tune.report`), so ASHA stops poor trials at its rungs (epochs 1, 3,
9, ...). Under PBT it also saves a checkpoint every epoch (model weights, Adam's moments, the
shuffling state: `training.Checkpoint`); when PBT exploits, the weaker trial continues from
the donor's checkpoint with the donor's hyperparameters, learning rate, dropout and batch size
perturbed.

`address=None` starts a local Ray instance for the search (and stops it after); an address
(`"127.0.0.1:6379"`, `"ray://host:10001"`) joins a running cluster. Each trial holds
`cpus_per_trial` CPUs and trains with as many torch threads, so trials never oversubscribe the
cores Ray gives them. Ray is imported only here, never by `import deepcast`.

>>> trials = search(space, objective, algorithm="asha", max_trials=16, epochs=27, seed=0,
...                 directory="runs/x/tuning", address=None)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from deepcast import _atomic
from deepcast.errors import ConfigError
from deepcast.tuning import objective as states
from deepcast.tuning.objective import Objective, TrialRecord
from deepcast.tuning.space import Choice, Float, Int, SearchSpace

logger = logging.getLogger(__name__)

ALGORITHMS = ("asha", "pbt")
EXPERIMENT = "ray"  # Ray's experiment folder inside the search directory
PERTURBED = ("learning_rate", "dropout", "batch_size")  # what PBT may change mid-run
RESTORES = "restores.jsonl"  # per trial: which checkpoint a PBT exploit continued from
KEEP_CHECKPOINTS = 4  # per trial; PBT exploits the newest (Ray warns below 3)


def started(directory: str | Path) -> bool:
    return (Path(directory) / EXPERIMENT).exists()


def param_space(space: SearchSpace) -> dict:
    """Ray's sampling domains for `space` (conditional entries are sampled always and left
    out of a trial whose condition fails)."""
    from ray import tune

    out = {}
    for p in space:
        if isinstance(p, Int):
            if p.step:
                out[p.name] = tune.qrandint(p.low, p.high, p.step)
            elif p.log:
                out[p.name] = tune.lograndint(p.low, p.high + 1)
            else:
                out[p.name] = tune.randint(p.low, p.high + 1)
        elif isinstance(p, Float):
            if p.step:
                out[p.name] = tune.quniform(p.low, p.high, p.step)
            elif p.log:
                out[p.name] = tune.loguniform(p.low, p.high)
            else:
                out[p.name] = tune.uniform(p.low, p.high)
        elif len(p.values) == 1:
            out[p.name] = p.values[0]
        else:
            out[p.name] = tune.choice(list(p.values))
    return out


def trial_values(space: SearchSpace, config: dict) -> dict:
    """A trial's hyperparameters from Ray's config: the active entries, typed."""
    values: dict = {}
    for name in space.names:
        if name in config and space.active(name, values):
            values[name] = config[name]
    return space.typed(values)


def mutations(space: SearchSpace) -> dict:
    """PBT's `hyperparam_mutations`: the learning rate, dropout and batch size the space tunes."""
    domains = param_space(space)
    out = {}
    for name in PERTURBED:
        if name in space and not (isinstance(space[name], Choice) and len(space[name].values) < 2):
            domain = domains[name]
            out[name] = list(space[name].values) if isinstance(space[name], Choice) else domain
    if not out:
        raise ConfigError(
            "population-based training perturbs learning_rate, dropout or batch_size; the "
            "search space tunes none of them"
        )
    return out


def _trainable(config, objective=None, space=None, epochs=None, seed=None, pbt=False, threads=1):
    """One trial, run by a Ray worker: train through `objective`, report every epoch."""
    import ray
    import torch
    from ray import tune

    from deepcast.training import Checkpoint

    torch.set_num_threads(threads)
    hp = trial_values(space, config)
    restore = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            restore = Checkpoint.load(directory)
        _log_restore(checkpoint.path, restore)

    def report(record: dict, take_checkpoint) -> None:
        metrics = {
            "val_loss": record.get("val_loss", float("nan")),
            "epoch": record["epoch"],
            "last": bool(record.get("last")),
            "wall": time.time(),  # Ray's own timestamp is in whole seconds
        }
        if not pbt:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            take_checkpoint().save(directory)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    outcome = objective(hp, epochs, seed, report=report, restore=restore)
    node = ray.get_runtime_context().get_node_id()  # which machine ran it
    _write_trial_file("outcome.json", {"best_epoch": outcome.best_epoch, "node_id": node})


def _log_restore(path: str, restore) -> None:
    """Note where a PBT exploit came from and keep what it loaded beside the trial, so what
    a trial continued from can be checked against the donor's checkpoint."""
    from ray import tune

    directory = Path(tune.get_context().get_trial_dir())
    loaded = f"restored_{len(restores(directory)) + 1}"
    restore.save(directory / loaded)
    line = {"checkpoint": path, "epoch": restore.epoch, "loaded": loaded}
    _write_trial_file(RESTORES, line, append=True)


def _write_trial_file(name: str, payload: dict, append: bool = False) -> None:
    from ray import tune

    directory = Path(tune.get_context().get_trial_dir())
    directory.mkdir(parents=True, exist_ok=True)
    if not append:  # whole files appear at once: a reader never parses half of one
        _atomic.write_text(directory / name, json.dumps(payload) + "\n")
        return
    with open(directory / name, "a", encoding="utf-8") as f:
        f.write(json.dumps(payload) + "\n")


def make_scheduler(algorithm: str, space: SearchSpace, epochs: int, seed: int):
    from ray.tune import schedulers

    if algorithm == "asha":
        return schedulers.ASHAScheduler(
            time_attr="training_iteration",
            max_t=epochs,
            grace_period=1,
            reduction_factor=3,
        )
    if algorithm == "pbt":
        return schedulers.PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=max(1, epochs // 4),
            hyperparam_mutations=mutations(space),
            quantile_fraction=0.25,
            resample_probability=0.25,
            synch=False,
        )
    raise ValueError(f"unknown algorithm {algorithm!r}")  # tune() checks user input first


def search(
    space: SearchSpace,
    objective: Objective,
    *,
    algorithm: str = "asha",
    max_trials: int,
    epochs: int,
    seed: int,
    directory: str | Path,
    overwrite: bool = False,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
) -> list[dict]:
    """Run the search with Ray Tune and return every trial as a `TrialRecord` dict.

    The experiment lives in `directory/ray`; running again continues it (finished trials kept,
    unfinished ones run again) unless `overwrite`.
    """
    import ray
    from ray import tune

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no trial tables on stdout
    directory = Path(directory).resolve()
    experiment = directory / EXPERIMENT
    if overwrite and experiment.exists():
        shutil.rmtree(experiment)
    if algorithm == "pbt":
        mutations(space)  # a space PBT cannot perturb fails before Ray starts
    started_here = _connect(address, cpus_per_trial)
    try:
        threads = max(1, int(cpus_per_trial))
        trainable = tune.with_resources(
            tune.with_parameters(
                _trainable,
                objective=objective,
                space=space,
                epochs=epochs,
                seed=seed,
                pbt=algorithm == "pbt",
                threads=threads,
            ),
            {"cpu": cpus_per_trial},
        )
        run_config = tune.RunConfig(
            name=EXPERIMENT,
            storage_path=str(directory),
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS),
            failure_config=tune.FailureConfig(max_failures=0),
            # A trial's own files (outcome.json, restores) reach the experiment folder too.
            sync_config=tune.SyncConfig(sync_artifacts=True),
        )
        start = time.time()
        if experiment.exists() and tune.Tuner.can_restore(str(experiment)):
            logger.info("resuming the Ray experiment in %s", experiment)
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(space),
                tune_config=tune.TuneConfig(
                    metric="val_loss",
                    mode="min",
                    num_samples=max_trials,
                    scheduler=make_scheduler(algorithm, space, epochs, seed),
                    search_alg=tune.search.BasicVariantGenerator(random_state=seed),
                    reuse_actors=True,
                ),
                run_config=run_config,
            )
        with _quiet_ray():
            grid = tuner.fit()
        return trials_table(grid, space, epochs, start)
    finally:
        if started_here:
            ray.shutdown()


def trials_table(grid, space: SearchSpace, epochs: int, start: float) -> list[dict]:
    """Every trial of a Ray result grid in start order, as `TrialRecord` dicts."""
    results = sorted(grid, key=lambda r: r.metrics.get("trial_id", "") if r.metrics else "")
    # Wall time from the first trial's start, so Ray's start-up is not charged to the search.
    first_start = min(
        (r.metrics["wall"] - r.metrics.get("time_total_s", 0) for r in results if r.metrics),
        default=start,
    )
    rows = []
    for number, result in enumerate(results, start=1):
        history = result.metrics_dataframe
        metrics = result.metrics or {}
        losses = [] if history is None or "val_loss" not in history else list(history["val_loss"])
        finite = [v for v in losses if v == v]  # not NaN
        trained = len(losses)
        if result.error is not None:
            status, message = states.FAILED, str(result.error).strip().splitlines()[-1]
        elif metrics.get("last"):
            status, message = states.COMPLETED, None
        elif trained:
            status, message = states.PRUNED, None
        else:
            status, message = states.FAILED, "no epoch reported"
        seconds = metrics.get("time_total_s")
        outcome = _read_trial_file(result.path, "outcome.json")
        rows.append(
            TrialRecord(
                trial_id=str(metrics.get("trial_id", number)),
                number=number,
                hyperparameters=trial_values(space, result.config or {}),
                score=min(finite) if status == states.COMPLETED and finite else None,
                status=status,
                seconds=None if seconds is None else round(seconds, 3),
                epochs=epochs,
                epochs_trained=trained,
                best_epoch=outcome.get("best_epoch"),
                seconds_per_epoch=round(seconds / trained, 4) if seconds and trained else None,
                finished_at=round(metrics["wall"] - first_start, 3) if "wall" in metrics else None,
                message=message,
            ).to_dict()
        )
    return rows


def restores(trial_path: str | Path) -> list[dict]:
    """The PBT exploits a trial went through: the donor checkpoint and what was loaded."""
    path = Path(trial_path) / RESTORES
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _read_trial_file(trial_path: str | None, name: str) -> dict:
    if trial_path is None or not (Path(trial_path) / name).exists():
        return {}
    return json.loads((Path(trial_path) / name).read_text(encoding="utf-8"))


def _connect(address: str | None, cpus_per_trial: float) -> bool:
    """Join the cluster at `address` or start a local instance; True if started here."""
    import ray

    if ray.is_initialized():
        return False
    options = {"log_to_driver": False, "configure_logging": False}
    if address is not None:
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {first}") from None
        return True
    _local_instance(lambda: ray.init(include_dashboard=False, **options))
    return True


def _local_instance(start) -> None:
    """Start a local Ray instance listening on 127.0.0.1 only. Ray advertises, and binds its
    servers to, the machine's network address even when no other machine joins; with its
    cluster mode off (what Ray does on macOS and Windows) every server listens on the
    loopback. Switched back once started, so a later `address=` join is unaffected."""
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        start()
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode


class _quiet_ray:
    """Ray Tune prints its trial tables to stdout; keep the user's terminal to our log lines."""

    def __enter__(self):
        self._level = logging.getLogger("ray").level
        logging.getLogger("ray").setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc):
        logging.getLogger("ray").setLevel(self._level)
        return False
