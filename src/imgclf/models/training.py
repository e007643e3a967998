"""Compile and fit Keras models: optimizers, learning-rate schedules, determinism, and runs
that survive an interruption.

A run keeps its resumable state in a folder beside the model (`<model>.state/`): Keras'
`BackupAndRestore` checkpoint (weights, optimizer state, epoch), the best-on-val model so far
and a fingerprint of the run's inputs and params. Restarted with the same fingerprint, the run
continues from its last finished epoch and trains only the remaining ones (the book's "ctrl+c"
method, made safe: a changed param or input starts afresh). A finished run removes its state.
"""

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from imgclf.config import OptimizerParams, ScheduleParams
from imgclf.fileio import atomic_output
from imgclf.models.modelmeta import write_metadata

MONITOR = "val_accuracy"


def set_seed(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; with `deterministic`, also make ops repeatable."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_schedule(
    lr: float, params: ScheduleParams, steps_per_epoch: int, epochs: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate per optimizer step; driven by the optimizer's step counter, so it
    resumes correctly with the restored optimizer state."""
    if params.name == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            lr,
            decay_steps=params.every * steps_per_epoch,
            decay_rate=params.factor,
            staircase=True,
        )
    if params.name == "polynomial":  # book ch. 12: lr * (1 - step / total) ** power
        return keras.optimizers.schedules.PolynomialDecay(
            lr, decay_steps=epochs * steps_per_epoch, end_learning_rate=0.0, power=params.power
        )
    return lr


def build_optimizer(
    params: OptimizerParams, schedule: ScheduleParams, steps_per_epoch: int, epochs: int
) -> keras.optimizers.Optimizer:
    rate = build_schedule(params.lr, schedule, steps_per_epoch, epochs)
    if params.name == "sgd":
        return keras.optimizers.SGD(rate, momentum=params.momentum, nesterov=params.nesterov)
    if params.name == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.RMSprop(rate)


def pixel_preprocessing(kind: str, means: np.ndarray) -> list[keras.layers.Layer]:
    """Layers that turn raw RGB pixels (0-255) into network input, so a saved model takes
    plain images: subtract the train means (book ch. 9) or divide by 255."""
    if kind == "mean":
        return [keras.layers.Normalization(mean=means, variance=np.ones(3), name="subtract_means")]
    return [keras.layers.Rescaling(1 / 255, name="scale")]


def compile_classifier(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    """Sparse integer labels, softmax outputs, accuracy as the metric."""
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )


@dataclass(frozen=True)
class RunPaths:
    """Where a training run writes: the best model, its DVCLive folder, its resumable state."""

    model: Path
    live: Path

    @property
    def state(self) -> Path:
        return self.model.with_name(self.model.name + ".state")


def fingerprint(params: dict[str, Any], inputs: Sequence[Path]) -> str:
    """Identifies a run: its params and the identity (size, mtime) of its input files."""
    stats = {str(path): [path.stat().st_size, path.stat().st_mtime_ns] for path in inputs}
    text = json.dumps({"params": params, "inputs": stats}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fit_resumable(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    paths: RunPaths,
    run_id: str,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    metadata: dict[str, Any] | None = None,
    verbose: int = 2,
) -> int:
    """Fit `model`, resuming an interrupted run with the same `run_id`; save the best-on-val
    model to `paths.model`, with `metadata` stored inside it (see `modelmeta`). Returns the
    number of epochs trained in this call."""
    best = _prepare_state(paths, run_id)
    checkpoint = keras.callbacks.ModelCheckpoint(
        paths.state / "best.keras",
        monitor=MONITOR,
        mode="max",
        save_best_only=True,
        initial_value_threshold=best,
    )
    counter = _EpochCounter(paths.state / "best.json", checkpoint)
    live = Live(str(paths.live), dvcyaml=False, save_dvc_exp=False, resume=True)
    callbacks = [
        *callbacks,
        checkpoint,
        counter,
        DVCLiveCallback(live=live),
        # Last, so that a saved epoch always has its best model and curve on disk.
        keras.callbacks.BackupAndRestore(paths.state / "backup"),
    ]
    model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    )  # tf.data shuffles
    with atomic_output(paths.model) as temporary:
        shutil.copyfile(paths.state / "best.keras", temporary)
        if metadata is not None:
            write_metadata(temporary, metadata)
    shutil.rmtree(paths.state)
    drop_live_summary(paths.live)
    return counter.epochs


def drop_live_summary(live: Path) -> None:
    """Remove DVCLive's `metrics.json` once a run is over: it repeats the curves' last rows,
    and DVC's plots, which read every file of the curves' folder, cannot draw it. (A resumed
    run needs it, so it stays while a run is unfinished.)"""
    (live / "metrics.json").unlink(missing_ok=True)


def _prepare_state(paths: RunPaths, run_id: str) -> float | None:
    """Keep the state of an interrupted run with the same id; otherwise start clean.
    Returns the best monitored value reached so far, if any."""
    marker = paths.state / "run_id"
    if not (marker.exists() and marker.read_text() == run_id):
        shutil.rmtree(paths.state, ignore_errors=True)
        shutil.rmtree(paths.live, ignore_errors=True)
        paths.state.mkdir(parents=True)
        marker.write_text(run_id)
    record = paths.state / "best.json"
    return json.loads(record.read_text())["best"] if record.exists() else None


class _EpochCounter(keras.callbacks.Callback):
    """Counts the epochs trained in this call and records the best value for a resume."""

    def __init__(self, record: Path, checkpoint: keras.callbacks.ModelCheckpoint) -> None:
        super().__init__()
        self.record, self.checkpoint, self.epochs = record, checkpoint, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs += 1
        best = self.checkpoint.best
        if best is not None and best != float("-inf"):
            with atomic_output(self.record) as temporary:
                temporary.write_text(json.dumps({"best": float(best)}))
