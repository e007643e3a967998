"""Two runs side by side: which test images their answers (or one model) predict differently,
and whether the accuracy gap between them is more than chance.

A run is any revision DVC can read: a commit, branch or tag, an experiment's name, or
`workspace` (the files here). Each run's predictions come from DVC (its cache, or the remote
when missing) and its chosen model from `metrics/evaluation/summary.json` at that revision.
The comparison is paired: only the test images both runs scored with the same label count
(curation may exclude or relabel some), and McNemar's exact test with the interval that
inverts it (`imgclf.evaluation.statistics`) says whether B's accuracy differs from A's.
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.core.catalogue import predictions_file
from imgclf.core.errors import UserError
from imgclf.data.hdf5io import SplitPredictions, load_predictions
from imgclf.evaluation.statistics import PairedComparison, compare_paired

SUMMARY = Path("metrics/evaluation/summary.json")
PREDICTIONS = Path("data/predictions")
WORKSPACE = "workspace"


@dataclass(frozen=True)
class Run:
    """One revision's test predictions of one model."""

    revision: str
    model: str
    test: SplitPredictions
    label_names: list[str]

    def answer(self, row: int) -> str:
        probabilities = self.test.probabilities[row]
        best = int(probabilities.argmax())
        return f"{self.label_names[best]} ({probabilities[best]:.2f})"


@dataclass(frozen=True)
class Change:
    path: str
    label: str
    before: str  # run A's answer, e.g. "cat (0.91)"
    after: str
    fixed: bool | None  # True: B right where A was wrong; False: the reverse; None: both wrong

    @property
    def verdict(self) -> str:
        return {True: "fixed", False: "broken", None: ""}[self.fixed]


@dataclass(frozen=True)
class RunComparison:
    a: Run
    b: Run
    shared: int  # test images both runs scored with the same label
    accuracy_a: float  # on those images
    accuracy_b: float
    paired: PairedComparison  # B minus A on those images
    changes: list[Change]  # fixed first, then broken, then wrong both times

    def lines(self, shown: int) -> list[str]:
        """The screen `imgclf compare REV_A REV_B` prints."""
        paired = self.paired
        verdict = "a significant difference" if paired.significant else "not significant"
        lines = [
            f"A = {self.a.revision} ({self.a.model}), B = {self.b.revision} ({self.b.model}).",
            f"On the {self.shared} test images both scored with the same label: accuracy "
            f"A {self.accuracy_a:.3f}, B {self.accuracy_b:.3f}; B − A {paired.accuracy_diff:+.3f} "
            f"(95 % interval {paired.diff_lo:+.3f} to {paired.diff_hi:+.3f}), McNemar "
            f"p = {paired.p_value:.3g}: {verdict}.",
            f"{len(self.changes)} images changed prediction: {paired.only_a_right} fixed, "
            f"{paired.only_b_right} broken, the others wrong both times.",
        ]
        rows = [("image", "label", "A", "B", "")] + [
            (change.path, change.label, change.before, change.after, change.verdict)
            for change in self.changes[:shown]
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        if self.changes:
            lines.append("")
            lines += [
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
                for row in rows
            ]
        if len(self.changes) > shown:
            lines.append(f"… and {len(self.changes) - shown} more (--shown N).")
        return lines


def read_run(root: Path, revision: str, model: str | None = None) -> Run:
    """`model`'s test predictions at `revision` (default: the model chosen there)."""
    from dvc.api import DVCFileSystem  # (DVC loads in a second: only for this command)
    from dvc.exceptions import DvcException
    from scmrepo.exceptions import SCMError

    rev = None if revision == WORKSPACE else revision
    try:
        fs = DVCFileSystem(str(root), rev=rev)
        if model is None:
            model = json.loads(fs.read_text(SUMMARY.as_posix()))["chosen"]
        source = predictions_file(PREDICTIONS, model).as_posix()
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / "predictions.h5"
            fs.get_file(source, str(local))
            splits, label_names = load_predictions(local)
    except FileNotFoundError as error:
        raise UserError(
            f"{revision}: {error.filename or error}: not found there (run the pipeline at that "
            "revision, or `dvc pull` its outputs)"
        ) from None
    except (DvcException, SCMError) as error:
        raise UserError(f"{revision}: {error}") from None
    if "test" not in splits:
        raise UserError(f"{revision}: {source} holds no test predictions")
    return Run(revision, model, splits["test"], label_names)


def _shared(a: Run, b: Run) -> list[str]:
    """Test images both runs scored, with the same label name, in A's order."""
    labels_b = {
        path: b.label_names[label] for path, label in zip(b.test.paths, b.test.labels, strict=True)
    }
    return [
        path
        for path, label in zip(a.test.paths, a.test.labels, strict=True)
        if labels_b.get(path) == a.label_names[label]
    ]


def _rows(test: SplitPredictions, paths: list[str]) -> np.ndarray:
    index = {path: row for row, path in enumerate(test.paths)}
    return np.array([index[path] for path in paths], dtype=np.int64)


def compare_runs(a: Run, b: Run) -> RunComparison:
    """B against A on the test images they share."""
    paths = _shared(a, b)
    if not paths:
        raise UserError(f"{a.revision} and {b.revision} share no test image with the same label")
    rows_a, rows_b = _rows(a.test, paths), _rows(b.test, paths)
    names_a = np.array(a.label_names)[a.test.probabilities[rows_a].argmax(1)]
    names_b = np.array(b.label_names)[b.test.probabilities[rows_b].argmax(1)]
    truth = np.array(a.label_names)[a.test.labels[rows_a]]
    right_a, right_b = names_a == truth, names_b == truth
    changes = [
        Change(
            path,
            str(truth[i]),
            a.answer(int(rows_a[i])),
            b.answer(int(rows_b[i])),
            bool(right_b[i]) if right_a[i] != right_b[i] else None,
        )
        for i, path in enumerate(paths)
        if names_a[i] != names_b[i]
    ]
    changes.sort(key=lambda change: ({True: 0, False: 1, None: 2}[change.fixed], change.path))
    return RunComparison(
        a,
        b,
        len(paths),
        float(right_a.mean()),
        float(right_b.mean()),
        compare_paired(right_b, right_a),
        changes,
    )
