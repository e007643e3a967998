"""The resumable state of a training run, kept in a folder (`<model>.state/`):

- `run_id`: the run's fingerprint; any other run finds a mismatch and starts afresh;
- `best.keras`: the model kept so far: the best on val, or (`keep_epoch="last"`) the last;
- `curves.csv`: a row per finished epoch (see `curves`);
- `checkpoint.npz`: the epochs finished, the best val accuracy, and every variable of the
  model (weights, BatchNorm statistics, Dropout's random state) and of its optimizer (step
  count, momentum): what a resumed run needs to go on exactly where the killed one was.

At the end of each epoch they are written in that order, each to a temporary name and then
renamed, so a kill at any moment leaves a checkpoint whose best model and curves are on disk.
A kill between two of the writes leaves a checkpoint one epoch behind them; the resumed run
retrains that epoch to the same values and writes them again.
"""

import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np

from imgclf.core.fileio import atomic_output
from imgclf.models.curves import append_epoch, keep_epochs

MONITOR = "val_accuracy"


class RunState:
    """The state folder of one run; `restore` it into the model before `fit`, and give
    `fit` its `callback`."""

    def __init__(self, folder: Path, run_id: str, keep_epoch: str = "best_val") -> None:
        self.folder, self.keep_last = folder, keep_epoch == "last"
        self.best_model = folder / "best.keras"
        self.curves = folder / "curves.csv"
        self.checkpoint = folder / "checkpoint.npz"
        self.epochs, self.best = 0, -np.inf
        marker = folder / "run_id"
        if not (marker.is_file() and marker.read_text() == run_id):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            with atomic_output(marker) as temporary:
                temporary.write_text(run_id)

    def restore(self, model: keras.Model) -> int:
        """Load the checkpoint, if any, into `model` (compiled); return the epochs done."""
        if not self.checkpoint.is_file():
            return 0
        variables = _state_variables(model)
        with np.load(self.checkpoint) as saved:
            arrays = [saved[f"v{index}"] for index in range(len(saved.files) - 2)]
            epochs, best = int(saved["epochs"]), float(saved["best"])
        # (Variable paths hold layer names that Keras numbers per process: compare shapes.)
        if [tuple(variable.shape) for variable in variables] != [
            array.shape for array in arrays
        ]:  # the same run id, but a model built differently: start afresh
            self.checkpoint.unlink()
            self.curves.unlink(missing_ok=True)
            return 0
        for variable, array in zip(variables, arrays, strict=True):
            variable.assign(array)
        self.epochs, self.best = epochs, best
        keep_epochs(self.curves, self.epochs)
        return self.epochs

    def end_epoch(self, model: keras.Model, epoch: int, logs: dict[str, Any]) -> None:
        """Record finished epoch `epoch` (0-based): kept model, curves, then the checkpoint."""
        if self.keep_last or logs[MONITOR] > self.best:
            self.best = float(logs[MONITOR])
            with atomic_output(self.best_model) as temporary:
                model.save(temporary)
        append_epoch(self.curves, epoch, logs)
        self.epochs = epoch + 1
        variables = _state_variables(model)
        arrays = {f"v{index}": np.asarray(variable) for index, variable in enumerate(variables)}
        with atomic_output(self.checkpoint) as temporary:
            np.savez(temporary, epochs=self.epochs, best=self.best, **arrays)

    def callback(self) -> keras.callbacks.Callback:
        return _EndOfEpoch(self)


class _EndOfEpoch(keras.callbacks.Callback):
    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.state.end_epoch(self.model, epoch, logs or {})


def _state_variables(model: keras.Model) -> list[keras.Variable]:
    """Every variable a resumed run must get back, in a fixed order. The optimizer's slots
    exist once it is built; build it here so a checkpoint can be loaded before `fit`."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return [*model.variables, *model.optimizer.variables]
