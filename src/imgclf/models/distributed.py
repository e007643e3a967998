"""Training on several devices or machines with `tf.distribute` (`distribute.strategy`).

`default` is plain Keras; `mirrored` puts one replica on each GPU (or logical CPU device, see
`split_cpu`) of one process and trains with Keras `fit`; `multi_worker` runs one process per
worker of the cluster in `TF_CONFIG` with a loop of its own (see `imgclf.models.multiworker`).
`fit_with_strategy` picks the way to train.

Make the strategy before TensorFlow runs anything (collective ops can only be configured at
start-up); build, load and compile models inside `strategy.scope()`; give pipelines the global
batch.
"""

import dataclasses
import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from imgclf.core.config import AugmentParams
from imgclf.core.errors import ConfigError
from imgclf.data.inputs import PackInfo, build_augmentation, evaluation_dataset, training_dataset
from imgclf.models.multiworker import fit_multi_worker, read_tf_config, statistics_averager
from imgclf.models.training import TrainingData, fit_resumable

log = logging.getLogger("imgclf.models.distributed")
STRATEGIES = ("default", "mirrored", "multi_worker")


def split_cpu(devices: int) -> None:
    """Split the CPU into `devices` logical devices, so `mirrored` runs (and is tested) without
    a GPU. Call before TensorFlow initialises: it cannot change its devices afterwards."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy named by the `strategy` param; call it first thing in a stage."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()  # all GPUs, NCCL all-reduce
        # MirroredStrategy() leaves CPUs out, and NCCL is GPU-only: name the CPU devices and
        # reduce through one of them.
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        if len(cpus) == 1:
            log.warning("strategy mirrored on one CPU device trains one replica (see split_cpu)")
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multi_worker":
        read_tf_config(required=True)  # one clear line instead of a gRPC error
        return tf.distribute.MultiWorkerMirroredStrategy()
    choices = ", ".join(STRATEGIES)
    raise ConfigError(f"distribute.strategy: unknown {name!r}; choose one of: {choices}")


def replicas(strategy: tf.distribute.Strategy) -> int:
    """Model replicas that train in sync (1 under the default strategy)."""
    return strategy.num_replicas_in_sync


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """The batch that pipelines must produce: each replica gets `per_replica` of it."""
    return per_replica * replicas(strategy)


def fit_with_strategy(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    train: TrainingData,
    val: tf.data.Dataset,
    *,
    run_id: str,
    **options: Any,
) -> int:
    """Train under `strategy`, taking `training.fit_resumable`'s arguments (but no callbacks
    under multi_worker): Keras `fit`, or `fit_multi_worker` where `fit` does not work."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if options.pop("class_weight", None) is not None:
            raise ConfigError(
                "class_weight = balanced is not supported with distribute.strategy = multi_worker"
            )
        return fit_multi_worker(strategy, model, train, val, **options)
    if replicas(strategy) > 1:
        options["callbacks"] = [*options.get("callbacks", ()), AverageBatchStatistics()]
    return fit_resumable(model, train, val, run_id=run_id, **options)


class AverageBatchStatistics(keras.callbacks.Callback):
    """Averages BatchNorm's moving statistics over the replicas before each validation.

    Keras updates them per replica (they are variables with aggregation "none"), so replicas
    drift apart, validate as different models, and the checkpoint keeps replica 0's. Averaged,
    every replica validates, and the checkpoint saves, one and the same model.
    """

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.average = statistics_averager(self.model.distribute_strategy, self.model)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.average()


@dataclass(frozen=True)
class RunData:
    """What a training run under a strategy trains and validates on: global batches of the
    train pack (as `training_dataset` from a given epoch on) and of the val pack."""

    strategy: tf.distribute.Strategy
    train: PackInfo
    batch: int  # the global batch: `per_replica` on each replica
    train_data: TrainingData
    val_data: tf.data.Dataset

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train.count / self.batch)


def run_data(
    strategy: str,
    train_pack: Path,
    val_pack: Path,
    *,
    per_replica: int,
    seed: int,
    crop: tuple[int, int] | None,
    augment: AugmentParams,
    cache: bool = False,
) -> RunData:
    """The strategy (made first: see the module's note), and the packs' batches cropped to
    `crop` (random crops and `augment` for train, the centre crop for val; None: the packed
    size, so only flips and `augment` vary the train images)."""
    made = make_strategy(strategy)
    train, val = PackInfo.read(train_pack), PackInfo.read(val_pack)
    batch = global_batch_size(per_replica, made)
    crop = crop or train.image_shape[:2]
    augmentation = build_augmentation(**dataclasses.asdict(augment), seed=seed)
    train_data = functools.partial(
        training_dataset,
        train,
        batch_size=batch,
        seed=seed,
        crop=crop,
        augmentation=augmentation,
        cache=cache,
    )
    val_data = evaluation_dataset(val, batch_size=batch, crop=crop)
    return RunData(made, train, batch, train_data, val_data)
