"""Distributed training: strategies by name, global batches, and real training runs under
`mirrored` (the CPU split into 2 logical devices) and `multi_worker` (2 worker processes on
127.0.0.1, where only the chief writes; TF_CONFIG itself is tested in test_multiworker.py).
Devices and collective ops can only be set up before TensorFlow initialises, so each run
happens in fresh Python processes running `WORKER` below."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from imgclf.core.errors import ConfigError, UserError
from imgclf.data.inputs import PackInfo, evaluation_dataset
from imgclf.models import distributed
from imgclf.models.curves import read_curves
from imgclf.models.modelcard import ModelCard
from support.packs import write_pack

PER_REPLICA = 4
EPOCHS = 2
SIDE, CROP = 18, (16, 16)
CARD_FIELDS = {
    "kind": "keras",
    "model": "test",
    "label_names": ("r", "g", "b"),
    "image_size": (SIDE, SIDE),
    "input_size": CROP,
}
# 45 rows: the last global batch of 8 is partial, and split unevenly across replicas.
ROWS = 45
TIMEOUT_S = 300

# One training run: argv = strategy name, pack, output folder. Prints a JSON summary.
WORKER = f"""
import hashlib, json, math, sys
from pathlib import Path

from imgclf.models import distributed, multiworker
from imgclf.models.modelcard import ModelCard

CARD = ModelCard(**{CARD_FIELDS!r})
name, pack, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
from imgclf.models.runtime import setup
setup(0, deterministic=True)  # first of all, as in a stage
if name == "mirrored":
    distributed.split_cpu(2)
strategy = distributed.make_strategy(name)  # before anything else runs in TensorFlow

import functools
import keras
from imgclf.models.architectures import build_architecture
from imgclf.data.inputs import PackInfo, evaluation_dataset, training_dataset
from imgclf.models.training import RunPaths, compile_classifier

info = PackInfo.read(pack)
batch = distributed.global_batch_size({PER_REPLICA}, strategy)
train = functools.partial(training_dataset, info, batch_size=batch, seed=0, crop={CROP})
val = evaluation_dataset(info, batch_size=batch, crop={CROP})
with strategy.scope():
    model = build_architecture("minivggnet", ({CROP[0]}, {CROP[1]}, 3), 3, l2=0.0005)
    compile_classifier(model, keras.optimizers.SGD(0.01, momentum=0.9))
epochs = distributed.fit_with_strategy(
    strategy, model, train, val, run_id="test", epochs={EPOCHS},
    steps_per_epoch=math.ceil(info.count / batch),
    paths=RunPaths(out / "model.keras", out / "curves.csv"), card=CARD,
    verbose=2,
)
weights = hashlib.sha256(b"".join(array.tobytes() for array in model.get_weights()))
summary = {{"replicas": distributed.replicas(strategy), "batch": batch, "epochs": epochs,
           "chief": multiworker.is_chief(), "weights": weights.hexdigest()}}
print("SUMMARY " + json.dumps(summary))
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """3 classes told apart by colour, so a few epochs learn something."""
    rng = np.random.default_rng(0)
    labels = np.arange(ROWS) % 3
    images = rng.integers(0, 60, (ROWS, SIDE, SIDE, 3), dtype=np.uint8)
    images[np.arange(ROWS), :, :, labels] += 150
    path = tmp_path / "pack.h5"
    return write_pack(path, images, labels, ["r", "g", "b"], chunk_rows=16)


def run_workers(
    name: str, pack: Path, out: Path, envs: list[dict[str, str]], logs: Path
) -> list[dict]:
    """Run one `WORKER` process per env at once; their summaries, or a failure that shows
    every worker's output."""
    script = logs / "worker.py"
    script.write_text(WORKER)
    processes, outputs = [], []
    for index, env in enumerate(envs):
        outputs.append(logs / f"worker{index}.log")
        with outputs[-1].open("w") as output:
            command = [sys.executable, str(script), name, str(pack), str(out)]
            processes.append(
                subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
            )
    killed = _wait_all(processes)
    if killed or any(process.returncode for process in processes):
        text = "\n".join(
            f"--- worker {index} (exit code {process.returncode}):\n{path.read_text()[-6000:]}"
            for index, (process, path) in enumerate(zip(processes, outputs, strict=True))
        )
        pytest.fail(f"{name} workers failed{killed}:\n{text}")
    return [json.loads(_summary_line(path)) for path in outputs]


def _wait_all(processes: list[subprocess.Popen]) -> str:
    """Wait for every process; kill them all as soon as one fails (its peers would wait for
    it for ever) or when time is up. Says why they were killed, if they were."""
    deadline = time.monotonic() + TIMEOUT_S
    while None in (codes := [process.poll() for process in processes]):
        failed = any(codes)
        if failed or time.monotonic() > deadline:
            for process in processes:
                process.kill()
                process.wait()
            return (
                " (one failed: killed the others)" if failed else f" (killed after {TIMEOUT_S} s)"
            )
        time.sleep(0.5)
    return ""


def _summary_line(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.startswith("SUMMARY ")]
    return lines[-1].removeprefix("SUMMARY ")


def base_env(tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    tmp.mkdir(exist_ok=True)
    return {**env, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (the OS picks them; a race is unlikely)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def curve(curves: Path, name: str) -> list[float]:
    return read_curves(curves)[name].tolist()


def assert_best_model_was_saved(out: Path, pack: Path) -> None:
    """The saved model loads, predicts, and is the best epoch's: its val metrics are the ones
    logged for that epoch (so every replica validated the same model, and the distributed
    validation counted every row once, partial batch included)."""
    model = keras.models.load_model(out / "model.keras", safe_mode=True)
    data = evaluation_dataset(PackInfo.read(pack), batch_size=8, crop=CROP)
    assert model.predict(data, verbose=0).shape == (ROWS, 3)
    metrics = model.evaluate(data, verbose=0, return_dict=True)
    accuracies = curve(out / "curves.csv", "val_accuracy")
    losses = curve(out / "curves.csv", "val_loss")
    best = int(np.argmax(accuracies))  # the first best, as ModelCheckpoint keeps it
    assert metrics["accuracy"] == pytest.approx(accuracies[best], abs=1e-6)
    assert metrics["loss"] == pytest.approx(losses[best], rel=1e-4)
    assert ModelCard.read(out / "model.keras") == ModelCard(**CARD_FIELDS)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_trains_with_fit(pack: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    [summary] = run_workers("mirrored", pack, out, [base_env(tmp_path / "tmp")], tmp_path)
    del summary["weights"]
    assert summary == {"replicas": 2, "batch": 2 * PER_REPLICA, "epochs": EPOCHS, "chief": True}
    assert sorted(path.name for path in out.iterdir()) == ["curves.csv", "model.keras"]
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(curve(out / "curves.csv", name)) == EPOCHS
    assert_best_model_was_saved(out, pack)


@pytest.mark.slow
def test_multi_worker_trains_on_two_processes_and_only_the_chief_writes(
    pack: Path, tmp_path: Path
) -> None:
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    envs = [
        {**base_env(tmp), "TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}
        for task in ({"type": "worker", "index": 0}, {"type": "worker", "index": 1})
    ]
    summaries = run_workers("multi_worker", pack, out, envs, tmp_path)
    assert [summary["chief"] for summary in summaries] == [True, False]
    # Every worker ends with the same model (BatchNorm statistics included).
    assert summaries[0]["weights"] == summaries[1]["weights"]
    for summary in summaries:
        assert summary["replicas"] == 2 and summary["batch"] == 2 * PER_REPLICA
        assert summary["epochs"] == EPOCHS
    # No state, no worker copies: the chief's model and curves only; the other worker's
    # temporary folder is gone.
    assert sorted(path.name for path in out.iterdir()) == ["curves.csv", "model.keras"]
    assert list(tmp.iterdir()) == []
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(curve(out / "curves.csv", name)) == EPOCHS
    assert_best_model_was_saved(out, pack)


def test_multi_worker_needs_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        distributed.make_strategy("multi_worker")


def test_unknown_strategy_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match=r"'horovod'.*default, mirrored, multi_worker"):
        distributed.make_strategy("horovod")


def test_default_strategy_is_one_replica_and_global_batch_scales() -> None:
    strategy = distributed.make_strategy("default")
    assert distributed.replicas(strategy) == 1
    assert distributed.global_batch_size(32, strategy) == 32
    four = SimpleNamespace(num_replicas_in_sync=4)
    assert distributed.global_batch_size(32, four) == 128  # type: ignore[arg-type]
