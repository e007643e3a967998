"""Training: schedules, optimizers, repeatable runs, and runs that resume after ctrl+c."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgclf.config import OptimizerParams, ScheduleParams
from imgclf.models.training import (
    RunPaths,
    build_optimizer,
    build_schedule,
    compile_classifier,
    fit_resumable,
    set_seed,
)


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


def tiny_data(seed: int = 0) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(40, 4, 4, 3)).astype("float32")
    labels = (images.mean(axis=(1, 2, 3)) > 0).astype("int64")
    train = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(40, seed=1)
    return train.repeat().batch(8), tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def tiny_model() -> keras.Model:
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    compile_classifier(model, keras.optimizers.SGD(0.1, momentum=0.9))
    return model


class CtrlC(keras.callbacks.Callback):
    """Presses ctrl+c when epoch `at` (0-based) begins."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.at:
            raise KeyboardInterrupt


def run(paths: RunPaths, run_id: str, callbacks=()) -> int:
    set_seed(0, deterministic=True)
    train, val = tiny_data()
    return fit_resumable(
        tiny_model(),
        train,
        val,
        epochs=5,
        steps_per_epoch=5,
        paths=paths,
        run_id=run_id,
        callbacks=callbacks,
        verbose=0,
    )


def live_steps(paths: RunPaths) -> list[int]:
    lines = (paths.live / "plots/metrics/eval/accuracy.tsv").read_text().splitlines()[1:]
    return [int(line.split("\t")[0]) for line in lines]


def test_interrupted_run_resumes_and_trains_only_the_rest(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "model.keras", tmp_path / "live")
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", callbacks=[CtrlC(at=3)])
    assert not paths.model.exists() and (paths.state / "best.keras").exists()
    assert live_steps(paths) == [0, 1, 2]
    assert run(paths, "run-a") == 2  # epochs 3 and 4 only
    assert live_steps(paths) == [0, 1, 2, 3, 4]
    assert not paths.state.exists()
    model = keras.models.load_model(paths.model, safe_mode=True)
    assert model.predict(tiny_data()[1], verbose=0).shape == (40, 2)
    assert not (paths.live / "metrics.json").exists()  # DVC plots cannot draw the summary


def test_changed_run_starts_afresh(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "model.keras", tmp_path / "live")
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", callbacks=[CtrlC(at=2)])
    assert run(paths, "run-b") == 5
    assert live_steps(paths) == [0, 1, 2, 3, 4]


def test_best_on_val_is_kept_across_a_resume(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "model.keras", tmp_path / "live")
    with pytest.raises(KeyboardInterrupt):
        run(paths, "run-a", callbacks=[CtrlC(at=3)])
    run(paths, "run-a")
    lines = (paths.live / "plots/metrics/eval/accuracy.tsv").read_text().splitlines()[1:]
    best = max(float(line.split("\t")[1]) for line in lines)
    model = keras.models.load_model(paths.model, safe_mode=True)
    _, accuracy = model.evaluate(tiny_data()[1], verbose=0)
    assert accuracy == pytest.approx(best, abs=1e-6)


def test_deterministic_runs_give_identical_weights(tmp_path: Path) -> None:
    weights = []
    for name in ("a", "b"):
        paths = RunPaths(tmp_path / f"{name}.keras", tmp_path / f"live-{name}")
        run(paths, name)
        weights.append(keras.models.load_model(paths.model).get_weights())
    for first, second in zip(*weights, strict=True):
        np.testing.assert_array_equal(first, second)
