"""The curation file (data/curation.csv): a person's decisions on the images of data.source,
tracked by git, validated, and applied by stage split to the split it assigned, so that
packs, training, evaluation and the audit all see the curated dataset while the source
folder is only read.

One row per image: `exclude` leaves it out, `relabel` gives it `label`, `keep` records that
a person looked and left it as it is (so it is not proposed again). Lines starting with `#`
are comments: `imgclf curate` writes the audit's proposals as commented rows, and deleting
the `#` accepts one. Decisions apply after the split is assigned on the whole folder: an
excluded image leaves its split, a relabelled one stays in it, so the other images keep
their splits and a curated run is scored on the same test images as the uncurated one.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imgclf.core.errors import UserError
from imgclf.core.fileio import atomic_output

CURATION_FILE = Path("data/curation.csv")
COLUMNS = ["path", "action", "label", "note"]
ACTIONS = ("exclude", "relabel", "keep")
# What `imgclf curate` and the report propose by default: relabels where the audit's label
# quality is at most this, most certain first, this many at most.
DEFAULT_MAX_LABEL_QUALITY = 0.01
DEFAULT_LIMIT = 25
HEADER_COMMENT = """\
# Decisions on the images of data.source, applied by stage split (docs/audit.md).
# One row per image (its path as in data/interim/manifest.csv): exclude leaves it out,
# relabel gives it the label column's class, keep records that it was reviewed as it is.
# `imgclf curate` adds the audit's proposals as commented rows: delete a row's # to accept it.
"""


@dataclass(frozen=True)
class Decision:
    """One row of the curation file, with its line number for messages."""

    line: int
    path: str
    action: str
    label: str
    note: str


def read_decisions(path: Path, *, proposals: bool = False) -> list[Decision]:
    """The rows of the curation file `path`; with `proposals`, the commented rows that
    parse as rows too (what `imgclf curate` already proposed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{path}: file not found; create it with the header line "
            f"{','.join(COLUMNS)} (or run `imgclf curate`)"
        ) from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save it as UTF-8 CSV") from None
    header_seen = False
    decisions = []
    for number, line in enumerate(text.splitlines(), start=1):
        commented = line.lstrip().startswith("#")
        if commented:
            line = line.lstrip()[1:]
        if not line.strip() or (commented and not proposals):
            continue
        cells = [cell.strip() for cell in next(csv.reader([line]))]
        if commented:
            # A proposal is a commented row with a known action; other comments are prose.
            if len(cells) == len(COLUMNS) and cells[1] in ACTIONS:
                decisions.append(Decision(number, *cells))
            continue
        if not header_seen:
            if cells != COLUMNS:
                raise UserError(
                    f"{path} line {number}: the header must be {','.join(COLUMNS)}, "
                    f"not {line.strip()!r}"
                )
            header_seen = True
            continue
        if not 2 <= len(cells) <= len(COLUMNS):
            raise UserError(
                f"{path} line {number}: expected {len(COLUMNS)} cells "
                f"({','.join(COLUMNS)}), got {len(cells)}; quote a note that holds a comma"
            )
        decisions.append(Decision(number, *cells, *[""] * (len(COLUMNS) - len(cells))))
    return decisions


def check_decisions(decisions: list[Decision], images: pd.DataFrame, source: Path) -> None:
    """One line for the first problem (and how many more there are): an unknown action,
    path or class, a relabel to the label the image has, a label on another action, or a
    second row for one image. `images` holds every image's path and label."""
    labels = dict(zip(images["path"], images["label"], strict=True))
    classes = sorted(set(labels.values()))
    problems, first_line = [], {}
    for decision in decisions:
        where = f"{source} line {decision.line}: {decision.path}"
        if decision.action not in ACTIONS:
            problems.append(
                f"{where}: action {decision.action!r} is not one of {', '.join(ACTIONS)}"
            )
        elif decision.path not in labels:
            problems.append(
                f"{where}: no such image in data.source (give its path as in "
                "data/interim/manifest.csv, with / between folders)"
            )
        elif decision.path in first_line:
            problems.append(
                f"{where}: already decided on line {first_line[decision.path]}; keep one row"
            )
        elif decision.action == "relabel" and decision.label not in classes:
            problems.append(
                f"{where}: relabel to {decision.label!r}, not a class of the dataset "
                f"({', '.join(classes)})"
            )
        elif decision.action == "relabel" and decision.label == labels[decision.path]:
            problems.append(
                f"{where}: already labelled {decision.label}; remove the row or change the label"
            )
        elif decision.action != "relabel" and decision.label:
            problems.append(f"{where}: {decision.action} takes no label; empty the label cell")
        first_line.setdefault(decision.path, decision.line)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)


def apply_decisions(splits: pd.DataFrame, decisions: list[Decision], source: Path) -> pd.DataFrame:
    """`splits` without the excluded images and with the relabelled ones' new labels; every
    class must keep an image in every split."""
    excluded = {d.path for d in decisions if d.action == "exclude"}
    relabelled = {d.path: d.label for d in decisions if d.action == "relabel"}
    curated = splits[~splits["path"].isin(excluded)].reset_index(drop=True)
    curated = curated.assign(label=curated["path"].map(relabelled).fillna(curated["label"]))
    for split in splits["split"].unique():
        missing = sorted(set(curated["label"]) - set(curated.loc[curated.split == split, "label"]))
        if missing:
            raise UserError(
                f"{source}: after its decisions, class {missing[0]!r} has no {split} image; "
                "exclude fewer of its images or relabel fewer away from it"
            )
    return curated


def decision_counts(decisions: list[Decision]) -> dict[str, int]:
    """Rows per action, for the split summary: excluded, relabelled, kept."""
    counts = {action: 0 for action in ACTIONS}
    for decision in decisions:
        counts[decision.action] += 1
    return {"excluded": counts["exclude"], "relabelled": counts["relabel"], "kept": counts["keep"]}


# The split an exact copy is kept in, first choice first: keeping the test copy keeps the
# test split of a curated run equal to the uncurated one's.
KEEP_ORDER = ("test", "val", "train")


def propose(
    audit: pd.DataFrame,
    splits: pd.DataFrame,
    decided: set[str],
    max_label_quality: float,
    limit: int,
) -> pd.DataFrame:
    """Rows (COLUMNS, then `copy_of`: the copy kept, for an exclude) the audit suggests for
    images not in `decided`: exclude all but one copy of each set of exact duplicates, and
    relabel to the audit's suggested class the likely label errors whose label quality is at
    most `max_label_quality`, most certain first, at most `limit` of them. Near duplicates
    and outliers need a look: none proposed."""
    split_of = dict(zip(splits["path"], splits["split"], strict=True))
    label_of = dict(zip(splits["path"], splits["label"], strict=True))
    rows = []
    copies = audit[audit["issue"] == "exact_duplicate"]
    for group in _copy_sets(zip(copies["path"], copies["other"], strict=True)):
        group = [path for path in group if path in split_of]
        if len(group) < 2 or decided.intersection(group):
            continue  # a person already decided on this set of copies
        kept = min(group, key=lambda path: (KEEP_ORDER.index(split_of[path]), path))
        for path in sorted(set(group) - {kept} - decided):
            differs = label_of[path] != label_of[kept]
            note = f"exact copy of {kept} ({split_of[kept]})" + (
                f", labelled {label_of[kept]} there" if differs else ""
            )
            rows.append([path, "exclude", "", note, kept])
    proposed = decided | {row[0] for row in rows}
    errors = audit[audit["issue"] == "label_error"].assign(
        score=lambda a: a["score"].astype(float)
    )
    errors = errors[(errors["score"] <= max_label_quality) & errors["path"].isin(split_of)]
    errors = errors[~errors["path"].isin(proposed)].sort_values(["score", "path"], kind="stable")
    for path, score, suggested in (
        errors[["path", "score", "suggested"]].head(limit).itertuples(index=False)
    ):
        note = f"label quality {score:.2g}: the audit's model says {suggested}"
        rows.append([path, "relabel", suggested, note, ""])
    return pd.DataFrame(rows, columns=[*COLUMNS, "copy_of"])


def _copy_sets(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The connected sets of paths that `pairs` join (a, b, c all copies of each other)."""
    parent: dict[str, str] = {}

    def root(path: str) -> str:
        while parent.setdefault(path, path) != path:
            path = parent[path]
        return path

    for first, second in pairs:
        parent[root(first)] = root(second)
    sets: dict[str, list[str]] = {}
    for path in sorted(parent):
        sets.setdefault(root(path), []).append(path)
    return list(sets.values())


def add_proposals(path: Path, rows: pd.DataFrame) -> None:
    """Append `rows` to the curation file `path` as commented rows (the header and notes
    first when the file is new); the rest of the file is left as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if not text.strip():
        text = HEADER_COMMENT + ",".join(COLUMNS) + "\n"
    elif not text.endswith("\n"):
        text += "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows[COLUMNS].itertuples(index=False))
    text += "".join(f"#{line}\n" for line in buffer.getvalue().splitlines())
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
