"""Training on every worker of a cluster (`distribute.strategy: multi_worker`), and the cluster
itself: `TF_CONFIG`, and which process is the chief.

Keras 3 `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so
`fit_multi_worker` is a small loop of its own with the loss, metrics, best-on-val model and
curves of `fit`, but no resume. Only the chief writes outputs; other workers save into a
temporary folder that they delete (as the TF docs recommend), so every worker runs the same
code.
"""

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from imgclf.core.errors import UserError
from imgclf.core.fileio import atomic_output
from imgclf.models.checkpoint import MONITOR
from imgclf.models.curves import append_epoch
from imgclf.models.modelcard import ModelCard
from imgclf.models.training import RunPaths, TrainingData

log = logging.getLogger("imgclf.models.multiworker")
_ROLES = ("chief", "worker")
_SUM, _MEAN = tf.distribute.ReduceOp.SUM, tf.distribute.ReduceOp.MEAN
# Per example (no reduction): the loop averages over the global batch itself.
_CROSSENTROPY = keras.losses.SparseCategoricalCrossentropy(reduction=None)


def read_tf_config(*, required: bool = False) -> dict[str, Any] | None:
    """TF_CONFIG from the environment, checked: `cluster` maps `chief`/`worker` to lists of
    "host:port", and `task` names this process's type and index in it. None when unset."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        if required:
            raise UserError("distribute.strategy multi_worker needs TF_CONFIG (cluster and task)")
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], task["index"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"TF_CONFIG is not valid ({error!r}): {text}") from None
    if not isinstance(cluster, dict) or set(cluster) - set(_ROLES) or "worker" not in cluster:
        raise UserError(f"TF_CONFIG cluster needs 'worker', and only 'chief' besides: {cluster}")
    if not all(isinstance(hosts, list) and hosts for hosts in cluster.values()):
        raise UserError(f"TF_CONFIG cluster must map roles to lists of host:port: {cluster}")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise UserError(f"TF_CONFIG task {task} is not in the cluster {cluster}")
    return config


def is_chief() -> bool:
    """Whether this process writes outputs: no TF_CONFIG (a single process), the `chief` task,
    or worker 0 of a cluster that has no chief."""
    config = read_tf_config()
    if config is None:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return "chief" not in config["cluster"] and task["index"] == 0


def fit_multi_worker(
    strategy: tf.distribute.MultiWorkerMirroredStrategy,
    model: keras.Model,
    train: TrainingData,
    val: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    paths: RunPaths,
    card: ModelCard | None = None,
    verbose: int = 2,
    keep_state: bool = False,
    keep_epoch: str = "best_val",
) -> int:
    """`fit_resumable` without the resume, on every worker at once. `model` is compiled by
    `training.compile_classifier` inside `strategy.scope()`; `train(first_epoch=0)` is endless
    and `val` finite, both in global batches and the same on every worker (same seeds): each worker
    keeps its share of every batch. Every worker's `model` ends with the best epoch's weights
    (only the chief has the file, so a later phase must go on from memory). Returns the number
    of epochs trained."""
    chief = is_chief()
    if chief:
        shutil.rmtree(paths.state, ignore_errors=True)  # stale from an earlier run
        paths.state.mkdir(parents=True)
    work = paths.state if chief else Path(tempfile.mkdtemp(prefix="imgclf-worker-"))
    batches = iter(strategy.experimental_distribute_dataset(_shard_by_data(train(first_epoch=0))))
    val_batches = strategy.experimental_distribute_dataset(_shard_by_data(val))
    try:
        loop = _EpochLoop(strategy, model, keep_last=keep_epoch == "last")
        for epoch in range(epochs):
            logs = loop.run_epoch(batches, steps_per_epoch, val_batches, work / "best.keras")
            if chief:
                append_epoch(work / "curves.csv", epoch, logs)
            if chief and verbose:
                text = " - ".join(f"{name}: {value:.4f}" for name, value in logs.items())
                log.info("epoch %d/%d - %s", epoch + 1, epochs, text)
        model.load_weights(work / "best.keras")
    finally:
        if not chief:
            shutil.rmtree(work)
    if chief:
        with atomic_output(paths.model) as temporary:
            shutil.copyfile(work / "best.keras", temporary)
            if card is not None:
                card.write(temporary)
        with atomic_output(paths.curves) as temporary:
            shutil.copyfile(work / "curves.csv", temporary)
        if not keep_state:
            shutil.rmtree(work)
    return epochs


class _EpochLoop:
    """The distributed steps, and one epoch: train, validate, keep the best model."""

    def __init__(
        self, strategy: tf.distribute.Strategy, model: keras.Model, keep_last: bool = False
    ) -> None:
        self.strategy, self.model, self.best = strategy, model, -math.inf
        self.keep_last = keep_last
        with strategy.scope():  # replicas cannot create variables: make the slots here
            model.optimizer.build(model.trainable_variables)
        self.average_statistics = statistics_averager(strategy, model)  # see the callback
        self.train_step = self._distribute(self._train_replica)
        self.eval_step = self._distribute(self._eval_replica)

    def run_epoch(self, train: Iterator[Any], steps: int, val: Iterable[Any], best: Path) -> dict:
        """Keras' epoch logs after `steps` training batches; saves the model to `best` when
        val accuracy improved."""
        loss, accuracy = _means(self.train_step, (next(train) for _ in range(steps)))
        self.average_statistics()
        val_loss, val_accuracy = _means(self.eval_step, val)
        # Every worker sees the same all-reduced values, so all of them save or none does.
        if self.keep_last or val_accuracy > self.best:
            self.best = val_accuracy
            with atomic_output(best) as temporary:
                self.model.save(temporary)
        return {"loss": loss, "accuracy": accuracy, "val_loss": val_loss, MONITOR: val_accuracy}

    def _train_replica(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        model = self.model
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            losses = _CROSSENTROPY(labels, probabilities)
            penalty = _regularization(model)
            # Averaged over the global batch: the all-reduce sums the replicas' gradients.
            loss = tf.nn.compute_average_loss(losses) + tf.nn.scale_regularization_loss(penalty)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return _totals(labels, probabilities, losses + penalty)

    def _eval_replica(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        probabilities = self.model(images, training=False)
        losses = _CROSSENTROPY(labels, probabilities) + _regularization(self.model)
        return _totals(labels, probabilities, losses)

    def _distribute(self, replica_step: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
        strategy = self.strategy

        # reduce_retracing: a partial last val batch has other shapes.
        @tf.function(reduce_retracing=True)
        def step(batch: tuple[Any, Any]) -> tf.Tensor:
            return strategy.reduce(_SUM, strategy.run(replica_step, args=batch), axis=None)

        return step


def statistics_averager(
    strategy: tf.distribute.Strategy, model: keras.Model
) -> Callable[[], None]:
    """A function that sets every replica's BatchNorm moving statistics to their mean."""
    statistics = [
        variable
        for variable in model.non_trainable_variables
        if variable.path.endswith(("moving_mean", "moving_variance"))
    ]

    def replica_average() -> None:
        context = tf.distribute.get_replica_context()
        # identity: this replica's copy as a plain tensor, not the distributed variable
        means = context.all_reduce(_MEAN, [tf.identity(variable.value) for variable in statistics])
        for variable, mean in zip(statistics, means, strict=True):
            variable.assign(mean)  # aggregation "none": sets this replica's copy only

    average = tf.function(lambda: strategy.run(replica_average))
    return average if statistics else lambda: None


def _regularization(model: keras.Model) -> tf.Tensor:
    """The weight penalties (L2) that Keras adds to the loss."""
    return tf.add_n(model.losses) if model.losses else tf.constant(0.0)


def _totals(labels: tf.Tensor, probabilities: tf.Tensor, losses: tf.Tensor) -> tf.Tensor:
    """[summed loss, correct predictions, examples] of a replica's batch. Summed over replicas
    and batches they give Keras' epoch means (weighted by batch size) exactly."""
    hits = tf.equal(tf.argmax(probabilities, axis=-1), labels)
    counts = [tf.reduce_sum(losses), tf.reduce_sum(tf.cast(hits, tf.float32))]
    return tf.stack([*counts, tf.cast(tf.shape(labels)[0], tf.float32)])


def _means(step: Callable[..., tf.Tensor], batches: Iterable[Any]) -> tuple[float, float]:
    """(mean loss, accuracy) over `batches`; summing tensors keeps the steps asynchronous."""
    total = tf.zeros(3)
    for batch in batches:
        total += step(batch)
    loss, correct, count = total.numpy().tolist()
    return loss / count, correct / count


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by batch rather than by file: packs are read through `numpy_function`, which
    TensorFlow's file sharding cannot split (AUTO warns, then falls back to this)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
