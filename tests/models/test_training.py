"""Training: schedules, optimizers, and runs that resume after ctrl+c to the same bytes."""

import functools
from pathlib import Path

import keras
import numpy as np
import pytest

from imgclf.core.config import OptimizerParams, ScheduleParams
from imgclf.data.hdf5io import PackReader
from imgclf.data.inputs import PackInfo, evaluation_dataset, training_dataset
from imgclf.models.checkpoint import RunState
from imgclf.models.curves import read_curves
from imgclf.models.training import (
    RunPaths,
    build_optimizer,
    build_schedule,
    class_weights,
    fingerprint,
    fit_resumable,
)
from support.models import stop_at, tiny_resumable
from support.packs import tiny_pack, tiny_pack_card


def schedule(name: str, **values: float) -> ScheduleParams:
    return ScheduleParams(**{"name": name, "power": 1.0, "factor": 0.5, "every": 2, **values})


def test_step_schedule_halves_every_two_epochs() -> None:
    rate = build_schedule(0.1, schedule("step"), steps_per_epoch=10, epochs=8)
    assert [float(rate(step)) for step in (0, 19, 20, 39, 40)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025]
    )


def test_polynomial_schedule_reaches_zero_at_the_end() -> None:
    rate = build_schedule(0.1, schedule("polynomial", power=2.0), steps_per_epoch=5, epochs=4)
    assert float(rate(0)) == pytest.approx(0.1)
    assert float(rate(10)) == pytest.approx(0.1 * 0.5**2)
    assert float(rate(20)) == pytest.approx(0.0)


def test_constant_schedule_and_optimizers() -> None:
    assert build_schedule(0.3, schedule("constant"), 5, 4) == 0.3
    sgd = build_optimizer(OptimizerParams("sgd", 0.01, 0.9, True), schedule("constant"), 5, 4)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    adam = build_optimizer(OptimizerParams("adam", 0.001, 0.0, False), schedule("step"), 5, 4)
    assert isinstance(adam, keras.optimizers.Adam)


def run(
    paths: RunPaths,
    run_id: str,
    pack: PackInfo,
    callbacks=(),
    model=None,
    keep_epoch: str = "best_val",
) -> int:
    keras.utils.set_random_seed(0)
    train = functools.partial(training_dataset, pack, batch_size=8, seed=0, crop=(4, 4))
    return fit_resumable(
        model or tiny_resumable(),
        train,
        evaluation_dataset(pack, batch_size=8, crop=(4, 4)),
        epochs=5,
        steps_per_epoch=5,
        paths=paths,
        run_id=run_id,
        callbacks=callbacks,
        card=tiny_pack_card("tiny", (4, 4)),  # the file is then byte-for-byte reproducible
        verbose=0,
        keep_epoch=keep_epoch,
    )


@pytest.fixture
def pack(tmp_path: Path) -> PackInfo:
    return tiny_pack(tmp_path / "pack.h5")


def paths_in(folder: Path) -> RunPaths:
    return RunPaths(folder / "model.keras", folder / "curves.csv")


def test_interrupted_run_resumes_to_the_uninterrupted_bytes(tmp_path: Path, pack) -> None:
    """Weights, optimizer state, Dropout's random state and the epochs' batches all come
    back: a run stopped after 3 epochs and resumed ends with the very same file."""
    whole = paths_in(tmp_path / "whole")
    assert run(whole, "run-a", pack) == 5
    stopped = paths_in(tmp_path / "stopped")
    with pytest.raises(KeyboardInterrupt):
        run(stopped, "run-a", pack, callbacks=[stop_at(3)])
    assert not stopped.model.exists() and (stopped.state / "best.keras").exists()
    assert read_curves(stopped.state / "curves.csv")["epoch"].tolist() == [1, 2, 3]
    assert run(stopped, "run-a", pack) == 2  # epochs 4 and 5 only
    assert stopped.model.read_bytes() == whole.model.read_bytes()
    assert stopped.curves.read_bytes() == whole.curves.read_bytes()
    assert not stopped.state.exists()


def test_resume_restores_every_variable_and_the_optimizer(tmp_path: Path, pack) -> None:
    paths = paths_in(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", pack, callbacks=[stop_at(2)])
    keras.utils.set_random_seed(0)
    model = tiny_resumable()
    state = RunState(paths.state, "run-a")
    assert state.restore(model) == 2
    # After 2 epochs of 5 steps; the momentum and the weights are the trained ones.
    assert int(model.optimizer.iterations) == 10
    with np.load(paths.state / "checkpoint.npz") as saved:
        restored = [np.asarray(v) for v in [*model.variables, *model.optimizer.variables]]
        for index, value in enumerate(restored):
            np.testing.assert_array_equal(value, saved[f"v{index}"])
    fresh = tiny_resumable()
    assert not np.array_equal(fresh.get_weights()[0], model.get_weights()[0])


def test_changed_run_starts_afresh(tmp_path: Path, pack) -> None:
    paths = paths_in(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", pack, callbacks=[stop_at(2)])
    assert run(paths, "run-b", pack) == 5
    assert read_curves(paths.curves)["epoch"].tolist() == [1, 2, 3, 4, 5]


def test_the_run_id_changes_with_params_and_inputs_only(tmp_path: Path, pack) -> None:
    """What makes a killed run's state resumable: the same params, the same input files (size
    and mtime) and the same code; anything else starts afresh."""
    params = {"epochs": 5, "lr": 0.01}
    first = fingerprint(params, [pack.path])
    assert fingerprint(dict(params), [pack.path]) == first
    assert fingerprint({**params, "lr": 0.02}, [pack.path]) != first
    pack.path.write_bytes(pack.path.read_bytes() + b"\0")  # a rebuilt pack
    assert fingerprint(params, [pack.path]) != first


def test_best_on_val_is_kept_across_a_resume(tmp_path: Path, pack) -> None:
    paths = paths_in(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", pack, callbacks=[stop_at(3)])
    run(paths, "run-a", pack)
    curves = read_curves(paths.curves)
    best = curves["val_accuracy"].max()
    model = keras.models.load_model(paths.model, safe_mode=True)
    metrics = model.evaluate(
        evaluation_dataset(pack, batch_size=8, crop=(4, 4)), verbose=0, return_dict=True
    )
    assert metrics["accuracy"] == pytest.approx(best, abs=1e-6)
    first_best = int(np.argmax(curves["val_accuracy"].to_numpy()))  # the first of equals
    assert metrics["loss"] == pytest.approx(curves["val_loss"][first_best], rel=1e-5)


def test_keep_epoch_last_keeps_the_last_epoch_across_a_resume(tmp_path: Path, pack) -> None:
    """A fixed epoch count: the model is the last epoch's whatever val says, so val is not
    spent on picking the epoch (and a kill and resume keep the same one)."""
    paths = paths_in(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", pack, callbacks=[stop_at(3)], keep_epoch="last")
    run(paths, "run-a", pack, keep_epoch="last")
    curves = read_curves(paths.curves)
    model = keras.models.load_model(paths.model, safe_mode=True)
    metrics = model.evaluate(
        evaluation_dataset(pack, batch_size=8, crop=(4, 4)), verbose=0, return_dict=True
    )
    assert metrics["loss"] == pytest.approx(curves["val_loss"].iloc[-1], rel=1e-5)
    best = paths_in(tmp_path / "best")
    run(best, "run-a", pack)
    # On this run val accuracy peaks at epoch 2 (first of equals), so the rules differ.
    assert int(np.argmax(curves["val_accuracy"].to_numpy())) != len(curves) - 1
    assert best.model.read_bytes() != paths.model.read_bytes()


def test_finished_state_can_be_kept_for_a_later_phase(tmp_path: Path, pack) -> None:
    paths = paths_in(tmp_path)
    keras.utils.set_random_seed(0)
    train = functools.partial(training_dataset, pack, batch_size=8, seed=0, crop=(4, 4))
    options = {"epochs": 2, "steps_per_epoch": 5, "paths": paths, "run_id": "a", "verbose": 0}
    val = evaluation_dataset(pack, batch_size=8, crop=(4, 4))
    assert fit_resumable(tiny_resumable(), train, val, keep_state=True, **options) == 2
    first = paths.model.read_bytes()
    paths.model.unlink()
    assert fit_resumable(tiny_resumable(), train, val, **options) == 0  # nothing left to train
    assert paths.model.read_bytes() == first and not paths.state.exists()


def test_balanced_class_weights_reach_the_loss(tmp_path: Path, pack) -> None:
    assert class_weights("none", pack.path) is None
    with PackReader(pack.path) as reader:
        counts = np.bincount(reader.labels)
    weights = class_weights("balanced", pack.path)
    assert weights == pytest.approx(
        {label: 40 / (2 * count) for label, count in enumerate(counts)}
    )
    trained = []
    for name, weight in (("plain", None), ("weighted", {0: 1.0, 1: 5.0})):
        keras.utils.set_random_seed(0)
        model = tiny_resumable()
        train = functools.partial(training_dataset, pack, batch_size=8, seed=0, crop=(4, 4))
        val = evaluation_dataset(pack, batch_size=8, crop=(4, 4))
        paths = paths_in(tmp_path / name)
        fit_resumable(
            model,
            train,
            val,
            epochs=1,
            steps_per_epoch=2,
            paths=paths,
            run_id=name,
            verbose=0,
            class_weight=weight,
        )
        trained.append(model.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(*trained, strict=True))
