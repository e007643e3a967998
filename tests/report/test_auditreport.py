"""The report's data-audit section: counts, facts, the two image grids, and a note when the
run has no audit."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from imgclf.core.fileio import write_csv, write_json
from imgclf.data.audit import AUDIT_COLUMNS
from imgclf.report.auditreport import audit_section, find_packed
from imgclf.report.figures import FigureFolder
from support.packs import write_pack

COUNTS = {
    "exact_duplicate": 1,
    "near_duplicate": 0,
    "conflicting_label": 0,
    "split_leak": 1,
    "label_error": 1,
    "outlier": 0,
    "classes": 2,
    "class_min": 2,
    "class_max": 3,
    "imbalance_ratio": 1.5,
    **{
        f"{side}_{stat}": 16.0 for side in ("width", "height") for stat in ("min", "median", "max")
    },
    "aspect_min": 1.0,
    "aspect_median": 1.0,
    "aspect_max": 1.0,
}


def write_inputs(root: Path) -> tuple[Path, Path, Path]:
    packs = root / "processed"
    for split, paths, labels in (
        ("train", ["a/1.png", "b/3.png", "b/4.png"], [0, 1, 1]),
        ("test", ["a/2.png", "b/5.png"], [0, 1]),
    ):
        images = np.stack(
            [np.full((16, 16, 3), 40 * index, np.uint8) for index in range(len(paths))]
        )
        write_pack(packs / f"{split}.h5", images, labels, ["a", "b"], paths=paths)
    rows = pd.DataFrame(
        [
            ("a/1.png", "exact_duplicate", 0.0, "a/2.png", ""),
            ("a/1.png", "split_leak", 0.0, "a/2.png", ""),
            ("b/4.png", "label_error", 0.01, "", "a"),
        ],
        columns=AUDIT_COLUMNS,
    )
    write_csv(root / "audit.csv", rows)
    write_json(root / "audit.json", COUNTS)
    return root / "audit.csv", root / "audit.json", packs


def test_section_lists_counts_pairs_and_label_errors(tmp_path: Path) -> None:
    audit, summary, packs = write_inputs(tmp_path)
    figures = FigureFolder(tmp_path / "figures")
    text = "\n".join(audit_section(audit, summary, packs, "images", figures))
    assert text.startswith("## Data audit")
    assert "| `split_leak`: duplicate pair in two different splits | 1 |" in text
    assert "2 classes of 2 to 3 images (largest / smallest 1.50)" in text
    assert "1. `images/a/1.png` and `images/a/2.png`: exact_duplicate (score 0.000)" in text
    assert "1. `images/b/4.png`: → a (score 0.010)" in text
    for name in ("duplicates.png", "label_errors.png"):
        assert cv2.imread(str(figures.path(name))) is not None


def test_images_found_in_their_split(tmp_path: Path) -> None:
    _, _, packs = write_inputs(tmp_path)
    found = find_packed(packs, ["b/5.png", "a/1.png", "missing.png"])
    assert sorted(found) == ["a/1.png", "b/5.png"]
    assert (found["b/5.png"].label, found["b/5.png"].split) == ("b", "test")
    assert found["a/1.png"].image.shape == (16, 16, 3)


def test_no_audit_is_a_note(tmp_path: Path) -> None:
    figures = FigureFolder(tmp_path / "figures")
    lines = audit_section(
        tmp_path / "absent.csv", tmp_path / "absent.json", tmp_path, "images", figures
    )
    assert lines == ["## Data audit", "", "No audit in this run (stage `audit`)."]
