"""imgclf: a reproducible image-classification workbench built as a DVC pipeline."""

__version__ = "0.1.0"

import os

from imgclf.core.cpu import pin_before_numpy
from imgclf.core.tensorflowlog import hold_start_up_notices

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the stage logs; a user who
# wants it sets TF_CPP_MIN_LOG_LEVEL themselves. Abseil ignores the level for what it logs
# before it starts: `hold_start_up_notices` applies it to tensorflow's import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
hold_start_up_notices()
# Before anything imports NumPy: the kernels it and OpenBLAS choose when they load.
pin_before_numpy()
