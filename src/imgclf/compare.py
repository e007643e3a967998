"""`python -m imgclf.compare`: this run against the committed results, in one screen
(`make run` ends with it).

Trained models are promised byte for byte only on the CPU model that made them
(docs/reproducibility.md). So after a build this says which CPU made the committed results
and which made this run's (from `metrics/provenance/`), how many trained outputs (models, features,
predictions: their MD5s in the committed and the new `dvc.lock`) came back the same, and
either that every committed output came back unchanged, or which committed files changed and
how each model's headline metrics moved, with whether the new value lies inside the committed
95 % interval.
"""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imgclf.core.provenance import cpu_record, describe_cpu, same_cpu_model

PROVENANCE = Path("metrics/provenance")
MODEL_METRICS = Path("metrics/evaluation/models")
EXPORT_CHOICE = Path("metrics/evaluation/export_choice.json")
HEADLINE = ("test.accuracy", "test.macro_f1")  # each with _lo and _hi in the metrics files
# What a build writes into git (DVC-cached outputs are not committed).
COMMITTED_OUTPUTS = ("dvc.lock", "metrics", "plots", "reports")
LOCK = Path("dvc.lock")
# What training and TensorFlow inference made: the outputs another CPU model may change.
TRAINED_OUTPUTS = ("models/", "data/features/", "data/predictions/")


@dataclass(frozen=True)
class Movement:
    """One headline metric of one model: committed value and interval, this run's value."""

    model: str
    metric: str
    committed: float
    low: float
    high: float
    new: float | None

    @property
    def inside(self) -> bool:
        return self.new is not None and self.low <= self.new <= self.high


def compare_with_committed(root: Path, revision: str = "HEAD") -> list[str]:
    """The lines to print; a checkout without git or without committed results gets one."""
    git = _Git(root, revision)
    if not git.available():
        return ["Not a git checkout: no committed results to compare this run with."]
    committed_cpus = git.committed_cpus()
    if not committed_cpus:
        return [f"No provenance committed at {revision}: nothing to compare this run with."]
    here = cpu_record()
    changed = git.changed_outputs()
    lines = [f"This machine: {describe_cpu(here)}."]
    if all(same_cpu_model(cpu, here) for cpu in committed_cpus):
        lines.append("The committed results were made on the same CPU model.")
        if not changed:
            lines.append("Every committed output came back byte for byte (git status is clean).")
            return lines
        lines.append(
            f"Yet {len(changed)} committed files changed, which this CPU model should not "
            f"give: {', '.join(changed[:8])}{' …' if len(changed) > 8 else ''}. Did code, "
            "params or data change? (`git diff`, `dvc status`)"
        )
    else:
        made_on = sorted({describe_cpu(cpu) for cpu in committed_cpus})
        lines.append(f"The committed results were made on {'; '.join(made_on)}.")
        same, trained = git.unchanged_trained_outputs()
        lines.append(
            "Trained models are promised byte for byte only on the CPU model that made them "
            f"(docs/reproducibility.md); here {len(same)} of {len(trained)} trained outputs "
            "(models, features, predictions) came back the same, and "
            f"{len(changed)} committed files changed{':' if changed else '.'}"
            + (f" {', '.join(changed[:8])}{' …' if len(changed) > 8 else ''}." if changed else "")
        )
    movements = git.movements()
    if movements:
        lines += ["", *_table(movements)]
        inside = sum(movement.inside for movement in movements)
        lines.append(
            f"{inside} of {len(movements)} new values lie inside the committed 95 % interval."
        )
    chosen = (git.committed_json(EXPORT_CHOICE) or {}).get("model")
    now = _read_json(root / EXPORT_CHOICE) or {}
    if chosen and now.get("model") != chosen:
        lines.append(f"The exported model changed: {chosen} committed, {now.get('model')} now.")
    return lines


def _table(movements: list[Movement]) -> list[str]:
    rows = [("model", "metric", "committed (95 % interval)", "this run", "inside")]
    for movement in movements:
        rows.append(
            (
                movement.model,
                movement.metric,
                f"{movement.committed:.3f} ({movement.low:.3f} to {movement.high:.3f})",
                "missing" if movement.new is None else f"{movement.new:.3f}",
                "yes" if movement.inside else "NO",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]


class _Git:
    """The committed side, read with git (never written)."""

    def __init__(self, root: Path, revision: str) -> None:
        self.root, self.revision = root, revision

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(self.root), *argv], capture_output=True, text=True, check=False
        )

    def available(self) -> bool:
        found = self._run("rev-parse", "--verify", "--quiet", f"{self.revision}^{{commit}}")
        return found.returncode == 0

    def committed_files(self, folder: Path) -> list[Path]:
        listed = self._run("ls-tree", "-r", "--name-only", self.revision, "--", str(folder))
        return [Path(line) for line in listed.stdout.splitlines() if line.endswith(".json")]

    def committed_json(self, path: Path) -> Any:
        shown = self._run("show", f"{self.revision}:{path.as_posix()}")
        return json.loads(shown.stdout) if shown.returncode == 0 else None

    def committed_cpus(self) -> list[dict[str, Any]]:
        records = (self.committed_json(path) for path in self.committed_files(PROVENANCE))
        return [record["cpu"] for record in records if isinstance(record, dict)]

    def changed_outputs(self) -> list[str]:
        status = self._run("status", "--porcelain", "--", *COMMITTED_OUTPUTS)
        return [line[3:] for line in status.stdout.splitlines()]

    def unchanged_trained_outputs(self) -> tuple[list[str], list[str]]:
        """The trained outputs whose MD5 in this checkout's dvc.lock is the committed one,
        and all trained outputs committed."""
        shown = self._run("show", f"{self.revision}:{LOCK.as_posix()}")
        committed = _lock_outputs(shown.stdout if shown.returncode == 0 else "")
        lock = self.root / LOCK
        now = _lock_outputs(lock.read_text(encoding="utf-8") if lock.is_file() else "")
        trained = sorted(path for path in committed if path.startswith(TRAINED_OUTPUTS))
        return [path for path in trained if now.get(path) == committed[path]], trained

    def movements(self) -> list[Movement]:
        found = []
        for path in self.committed_files(MODEL_METRICS):
            committed = self.committed_json(path) or {}
            new = _read_json(self.root / path) or {}
            model = path.relative_to(MODEL_METRICS).with_suffix("").as_posix()
            for metric in HEADLINE:
                if not all(f"{metric}{end}" in committed for end in ("", "_lo", "_hi")):
                    continue
                found.append(
                    Movement(
                        model,
                        metric,
                        committed[metric],
                        committed[f"{metric}_lo"],
                        committed[f"{metric}_hi"],
                        new.get(metric),
                    )
                )
        return found


def _lock_outputs(text: str) -> dict[str, str]:
    """Each output's MD5 in a dvc.lock's text."""
    stages = (yaml.safe_load(text) or {}).get("stages", {})
    return {
        out["path"]: out.get("md5") for stage in stages.values() for out in stage.get("outs", [])
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def main() -> None:
    print("\n".join(compare_with_committed(Path.cwd())))


if __name__ == "__main__":
    main()
