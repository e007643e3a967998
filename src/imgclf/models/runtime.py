"""How TensorFlow runs: seeds, and with `deterministic`, kernels and threads that give
bit-identical results on one CPU model whatever its core count (other CPU models train
other last bits: docs/reproducibility.md).

oneDNN, under most of TensorFlow's CPU kernels, picks its code by instruction set (AVX2,
AVX-512, AMX) and splits work by the size of TensorFlow's thread pool; either changes the
last bits of a float. Measured on the demo's MiniVGGNet: uncapped, 1 and 2 cores trained
different models; capped at AVX2, pools of 1 and 2 threads trained one model and 3, 4, 8, 16
and 32 threads five others; a fixed pool of 2 threads trained that one model on 1 core too.
So a deterministic run caps oneDNN at AVX2 (`ONEDNN_MAX_CPU_ISA`, read when its first kernel
is made), fixes the pool at `THREADS`, and turns on TensorFlow's op determinism. Call `setup`
first thing in a process, before TensorFlow runs any op (or makes a distribution strategy):
later it cannot take effect.
"""

import logging
import os

import keras
import tensorflow as tf

from imgclf.core.cpu import is_x86, pin_threads

ISA = "AVX2"  # the newest instruction set every x86-64 CPU of the last decade has
THREADS = 2  # the intra-op pool of a deterministic run, whatever the machine has
log = logging.getLogger("imgclf.models.runtime")


def setup(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; with `deterministic`, pin kernels and threads."""
    if deterministic:
        if is_x86():  # (oneDNN's ISA names are x86's)
            os.environ["ONEDNN_MAX_CPU_ISA"] = ISA
        try:
            if tf.config.threading.get_intra_op_parallelism_threads() != THREADS:
                tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        except RuntimeError:  # only where one process runs several jobs (tests, notebooks)
            log.warning(
                "TensorFlow ran before the deterministic set-up: results may differ from other "
                "machines in the last bits; run this in a new process to avoid it"
            )
        tf.config.experimental.enable_op_determinism()
        pin_threads()
    keras.utils.set_random_seed(seed)
