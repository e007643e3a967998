"""Compile and fit Keras models: optimizers, learning-rate schedules, and runs that survive an
interruption and, resumed, end with the same bytes as if they had never stopped.

A run keeps its resumable state in a folder beside the model (`<model>.state/`, see
`checkpoint`): after every epoch, the best-on-val model so far, the curves, then every
variable of the model and its optimizer (Dropout's random state included), each written
atomically. Restarted with the same fingerprint, the run restores them and trains only the
remaining epochs on the batches those epochs would have had (`data.inputs` draws each epoch
from the seed and the epoch number); a changed param or input starts afresh. A finished run
removes its state.
"""

import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from imgclf.core.config import OptimizerParams, ScheduleParams
from imgclf.core.fileio import atomic_output
from imgclf.data.hdf5io import PackReader
from imgclf.models.checkpoint import RunState
from imgclf.models.modelcard import ModelCard


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
    # Named: Keras numbers unnamed optimizers per process (sgd, sgd_1, ...), and the name is
    # saved in the model file, so a resumed run would otherwise differ from an unbroken one.
    if params.name == "sgd":
        return keras.optimizers.SGD(
            rate, momentum=params.momentum, nesterov=params.nesterov, name=params.name
        )
    if params.name == "adam":
        return keras.optimizers.Adam(rate, name=params.name)
    return keras.optimizers.RMSprop(rate, name=params.name)


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
    """Where a training run writes: the best model, its curves (CSV), its resumable state."""

    model: Path
    curves: Path

    @property
    def state(self) -> Path:
        return self.model.with_name(self.model.name + ".state")


def fingerprint(params: dict[str, Any], inputs: Sequence[Path]) -> str:
    """Identifies a run: its params, the identity (size, mtime) of its input files, and the
    code that trains it (the library and the script being run), so that a killed run's state
    is only ever resumed by the same run."""
    stats = {str(path): [path.stat().st_size, path.stat().st_mtime_ns] for path in inputs}
    code = hashlib.sha256()
    script = Path(sys.argv[0])
    for source in [*sorted(Path(__file__).parents[1].rglob("*.py")), script]:
        if source.is_file():
            code.update(source.read_bytes())
    text = json.dumps(
        {"params": params, "inputs": stats, "code": code.hexdigest()}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def class_weights(kind: str, pack: Path) -> dict[int, float] | None:
    """Keras `class_weight` from the labels of the train `pack`: None for "none"; for
    "balanced", n / (classes * count) per class, scikit-learn's rule."""
    if kind == "none":
        return None
    with PackReader(pack) as reader:
        labels, classes = reader.labels, len(reader.label_names)
    weights = compute_class_weight("balanced", classes=np.arange(classes), y=labels)
    return {label: float(weight) for label, weight in enumerate(weights)}


# Called as train(first_epoch=k): endless training batches from epoch k on.
TrainingData = Callable[..., tf.data.Dataset]


def fit_resumable(
    model: keras.Model,
    train: TrainingData,
    val: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    paths: RunPaths,
    run_id: str,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    card: ModelCard | None = None,
    verbose: int = 2,
    keep_state: bool = False,
    class_weight: dict[int, float] | None = None,
    keep_epoch: str = "best_val",
) -> int:
    """Fit `model` (compiled) for `epochs`, resuming an interrupted run with the same
    `run_id`; write the kept model (the best on val, or with `keep_epoch="last"` the last
    epoch's) to `paths.model`, with its `card` inside it (see
    `modelcard`), and the curves to `paths.curves`. `train(first_epoch=k)` gives the batches
    of epochs k, k + 1, ... `keep_state` keeps the finished state, so that a later phase can be
    resumed without training this one again. Returns the number of epochs trained here."""
    state = RunState(paths.state, run_id, keep_epoch)
    start = state.restore(model)
    if start < epochs:
        model.fit(
            train(first_epoch=start),
            validation_data=val,
            initial_epoch=start,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=[*callbacks, state.callback()],
            verbose=verbose,
            shuffle=False,  # tf.data shuffles
            class_weight=class_weight,
        )
    with atomic_output(paths.model) as temporary:
        shutil.copyfile(state.best_model, temporary)
        if card is not None:
            card.write(temporary)
    with atomic_output(paths.curves) as temporary:
        shutil.copyfile(state.curves, temporary)
    if not keep_state:
        shutil.rmtree(paths.state)
    return epochs - start
