"""`python -m imgclf.compare` (what `make run` ends with): this run against the committed
results, in a real git repository."""

import json
import subprocess
from pathlib import Path

import yaml

from imgclf.compare import compare_with_committed
from imgclf.core.provenance import cpu_record

OTHER_CPU = {
    "vendor": "GenuineIntel",
    "name": "Intel(R) Xeon(R) Processor",
    "family": 6,
    "model": 143,
    "stepping": 8,
    "isa_level": "x86-64-v4",
    "caches": {"l1d": 49152, "l2": 2097152, "l3": 110100480},
}
METRICS = {"test.accuracy": 0.8, "test.accuracy_lo": 0.75, "test.accuracy_hi": 0.85}


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def git(root: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(root), *argv], check=True, capture_output=True)


def lock(models: dict[str, str]) -> str:
    """A dvc.lock whose stages output these model files with these MD5s."""
    stages = {
        name: {"cmd": "train", "outs": [{"path": path, "md5": md5}]}
        for name, (path, md5) in enumerate(models.items())
    }
    return yaml.safe_dump({"schema": "2.0", "stages": stages})


LOCKED = {"models/logreg.skops": "a" * 32, "data/predictions/logreg.h5": "b" * 32}


def committed_run(root: Path, cpu: dict) -> Path:
    """A repository whose HEAD holds one model's metrics, one provenance record and a lock."""
    git(root, "init", "-q")
    (root / "dvc.lock").write_text(lock(LOCKED))
    write(root / "metrics/provenance/logreg.json", {"cpu": cpu, "deterministic": True})
    write(root / "metrics/evaluation/models/logreg.json", METRICS)
    write(root / "metrics/evaluation/export_choice.json", {"model": "logreg"})
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run")
    return root


def test_the_same_cpu_model_and_unchanged_outputs_say_so(tmp_path: Path) -> None:
    root = committed_run(tmp_path, cpu_record())
    lines = compare_with_committed(root)
    assert "The committed results were made on the same CPU model." in lines
    assert lines[-1] == "Every committed output came back byte for byte (git status is clean)."


def test_another_cpu_model_gets_the_table_of_committed_and_new_values(tmp_path: Path) -> None:
    root = committed_run(tmp_path, OTHER_CPU)
    write(root / "metrics/evaluation/models/logreg.json", {**METRICS, "test.accuracy": 0.74})
    write(root / "metrics/evaluation/export_choice.json", {"model": "finetune"})
    (root / "dvc.lock").write_text(lock(LOCKED | {"models/logreg.skops": "c" * 32}))
    text = "\n".join(compare_with_committed(root))
    assert "made on Intel(R) Xeon(R) Processor (GenuineIntel family 6 model 143" in text
    assert "here 1 of 2 trained outputs (models, features, predictions) came back" in text
    assert "the same, and 3 committed files changed: dvc.lock, metrics/" in text
    row = next(line for line in text.splitlines() if line.startswith("logreg"))
    assert row.split() == [
        "logreg",
        "test.accuracy",
        "0.800",
        "(0.750",
        "to",
        "0.850)",
        "0.740",
        "NO",
    ]
    assert "0 of 1 new values lie inside the committed 95 % interval." in text
    assert "The exported model changed: logreg committed, finetune now." in text


def test_a_change_on_the_same_cpu_model_is_named(tmp_path: Path) -> None:
    root = committed_run(tmp_path, cpu_record())
    write(root / "metrics/evaluation/models/logreg.json", {**METRICS, "test.accuracy": 0.81})
    text = "\n".join(compare_with_committed(root))
    assert "Yet 1 committed files changed" in text and "logreg.json" in text
    assert "1 of 1 new values lie inside" in text


def test_outside_git_or_without_provenance_it_says_there_is_nothing_to_compare(
    tmp_path: Path,
) -> None:
    assert compare_with_committed(tmp_path)[0].startswith("Not a git checkout")
    git(tmp_path, "init", "-q")
    write(tmp_path / "a.json", {})
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    assert compare_with_committed(tmp_path)[0].startswith("No provenance committed at HEAD")
