"""The report's data-audit section: counts per issue, class balance and image sizes, and two
image grids (duplicate pairs side by side; the likeliest label errors, given → suggested).

Its inputs are the `audit` stage's outputs and the packs, whose stored copies of the images
are what the models saw (the report never reads the source folder).
"""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from imgclf.core.catalogue import pack_file
from imgclf.core.fileio import read_csv, read_json
from imgclf.data.audit import AUDIT_COLUMNS, PAIR_ISSUES
from imgclf.data.hdf5io import PackReader
from imgclf.data.splitting import SPLITS
from imgclf.report.figures import FigureFolder, save_image_grid
from imgclf.report.markdown import code, table

ISSUE_TEXT = {
    "exact_duplicate": "same pixels (any file format or name)",
    "near_duplicate": "near-duplicate (perceptual hash or backbone features)",
    "conflicting_label": "duplicate pair with two different labels",
    "split_leak": "duplicate pair in two different splits",
    "label_error": "likely label error (out-of-fold probabilities, confident learning)",
    "outlier": "outlier (backbone features, probabilities)",
}
PAIRS_SHOWN = 8
ERRORS_SHOWN = 12


@dataclass(frozen=True)
class PackedImage:
    """One image as a pack stored it, with its label and the split it is in."""

    image: np.ndarray
    label: str
    split: str


def find_packed(packs: Path, paths: list[str]) -> dict[str, PackedImage]:
    """The packed images of `paths` found in `packs`/{split}.h5 (absent ones left out)."""
    wanted, found = set(paths), {}
    for split in SPLITS:
        if not (pack := pack_file(packs, split)).is_file():
            continue
        with PackReader(pack) as reader:
            for row, path in enumerate(reader.paths):
                if path in wanted:
                    label = reader.label_names[reader.labels[row]]
                    found[path] = PackedImage(reader.images[row], label, split)
    return found


def audit_section(
    audit: Path,
    summary: Path,
    packs: Path,
    source: str,
    figures: FigureFolder,
) -> list[str]:
    """The `## Data audit` section, or a note when the run has no audit."""
    if not audit.is_file() or not summary.is_file():
        return ["## Data audit", "", "No audit in this run (stage `audit`)."]
    counts, rows = read_json(summary), read_csv(audit, AUDIT_COLUMNS)
    counts_table = table(
        ["issue", "rows in audit.csv"],
        [
            [f"{code(issue)}: {text}", f"{counts.get(issue, 0):,}"]
            for issue, text in ISSUE_TEXT.items()
        ],
    )
    facts = (
        f"{counts['classes']} classes of {counts['class_min']:,} to {counts['class_max']:,} "
        f"images (largest / smallest {counts['imbalance_ratio']:.2f}); image widths "
        f"{counts['width_min']:g} to {counts['width_max']:g} px (median "
        f"{counts['width_median']:g}), "
        f"heights {counts['height_min']:g} to {counts['height_max']:g} (median "
        f"{counts['height_median']:g}), aspect ratios {counts['aspect_min']:.2f} to "
        f"{counts['aspect_max']:.2f}."
    )
    lines = [
        "## Data audit",
        "",
        f"Every issue the `audit` stage found is listed in {code(str(audit))}, lowest (most "
        "certain) score first; the counts:",
        "",
        *counts_table,
        "",
        facts,
    ]
    lines += _pairs_part(rows, packs, source, figures)
    lines += _label_errors_part(rows, packs, source, figures)
    return lines


def _pairs_part(rows: pd.DataFrame, packs: Path, source: str, figures: FigureFolder) -> list[str]:
    pairs = rows[rows["issue"].isin(PAIR_ISSUES)].head(PAIRS_SHOWN)
    if pairs.empty:
        return ["", "### Duplicate pairs", "", "No duplicate pair found."]
    lines = ["", "### Duplicate pairs", "", f"The {len(pairs)} closest pairs, side by side:", ""]
    found = find_packed(packs, [*pairs["path"], *pairs["other"]])
    shown = [pair for pair in pairs.itertuples() if pair.path in found and pair.other in found]
    if shown:
        images, titles = [], []
        for number, pair in enumerate(shown, 1):
            for path in (pair.path, pair.other):
                packed = found[path]
                images.append(packed.image)
                titles.append(f"{number}. {packed.label} ({packed.split})")
        save_image_grid(figures.path("duplicates.png"), images, titles, columns=4)
        lines += [figures.link("duplicates.png", "Duplicate pairs"), ""]
    root = PurePosixPath(source)
    lines += [
        f"{number}. {code(str(root / pair.path))} and {code(str(root / pair.other))}: "
        f"{pair.issue} (score {float(pair.score):.3f})"
        for number, pair in enumerate(pairs.itertuples(), 1)
    ]
    return lines


def _label_errors_part(
    rows: pd.DataFrame, packs: Path, source: str, figures: FigureFolder
) -> list[str]:
    errors = rows[rows["issue"] == "label_error"].head(ERRORS_SHOWN)
    if errors.empty:
        return ["", "### Likely label errors", "", "No likely label error found."]
    lines = [
        "",
        "### Likely label errors",
        "",
        f"The {len(errors)} likeliest, given label → suggested label (label quality score):",
        "",
    ]
    found = find_packed(packs, list(errors["path"]))
    shown = [error for error in errors.itertuples() if error.path in found]
    if shown:
        images = [found[error.path].image for error in shown]
        titles = [
            f"{number}. {found[error.path].label} → {error.suggested} ({float(error.score):.2f})"
            for number, error in enumerate(shown, 1)
        ]
        save_image_grid(figures.path("label_errors.png"), images, titles)
        lines += [figures.link("label_errors.png", "Likely label errors"), ""]
    root = PurePosixPath(source)
    lines += [
        f"{number}. {code(str(root / error.path))}: → {error.suggested} "
        f"(score {float(error.score):.3f})"
        for number, error in enumerate(errors.itertuples(), 1)
    ]
    return lines
