"""Training on several devices or machines with `tf.distribute` (`train.strategy`).

`default` is plain Keras; `mirrored` puts one replica on each GPU (or logical CPU device, see
`split_cpu`) of one process and trains with Keras `fit`; `multi_worker` runs one process per
worker of the cluster in `TF_CONFIG` with a loop of its own (see `imgclf.models.multiworker`).
`fit_with_strategy` picks the way to train.

Make the strategy before TensorFlow runs anything (collective ops can only be configured at
start-up); build, load and compile models inside `strategy.scope()`; give pipelines the global
batch.
"""

import logging
from typing import Any

import keras
import tensorflow as tf

from imgclf.core.errors import ConfigError
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
    raise ConfigError(f"train.strategy: unknown {name!r}; choose one of: {', '.join(STRATEGIES)}")


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
                "class_weight = balanced is not supported with train.strategy = multi_worker"
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
