"""The curation file: read (comments and proposals apart), every bad row refused in one line
that names its line, decisions applied after the split, and the audit's proposals."""

from pathlib import Path

import pandas as pd
import pytest

from imgclf.core.errors import UserError
from imgclf.data.curation import (
    COLUMNS,
    add_proposals,
    apply_decisions,
    check_decisions,
    decision_counts,
    propose,
    read_decisions,
)

HEADER = ",".join(COLUMNS) + "\n"


@pytest.fixture
def splits() -> pd.DataFrame:
    """Two classes, each with two images in every split."""
    rows = [
        (f"{label}/{split}{index}.png", label, split)
        for label in ("cat", "dog")
        for split in ("train", "val", "test")
        for index in range(2)
    ]
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "curation.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_are_read_with_their_lines_comments_and_proposals_apart(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# notes, even with, commas\n"
        + HEADER
        + "cat/train0.png,exclude,,a blurry copy\n"
        + "\n"
        + '#dog/val0.png,relabel,cat,"proposed, not accepted"\n'
        + "dog/test1.png,relabel,cat\n",
    )
    decisions = read_decisions(path)
    assert [(d.line, d.path, d.action, d.label, d.note) for d in decisions] == [
        (3, "cat/train0.png", "exclude", "", "a blurry copy"),
        (6, "dog/test1.png", "relabel", "cat", ""),
    ]
    with_proposals = read_decisions(path, proposals=True)
    assert [d.path for d in with_proposals] == ["cat/train0.png", "dog/val0.png", "dog/test1.png"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("cat/train0.png,delete,,", r"line 2: cat/train0.png: action 'delete' is not"),
        ("cat/nope.png,exclude,,", r"line 2: cat/nope.png: no such image in data.source"),
        ("cat/train0.png,relabel,cow,", r"relabel to 'cow', not a class .*\(cat, dog\)"),
        ("cat/train0.png,relabel,cat,", r"line 2: cat/train0.png: already labelled cat"),
        ("cat/train0.png,exclude,dog,", r"exclude takes no label"),
        (
            "cat/train0.png,exclude,,\ncat/train0.png,keep,,",
            r"line 3: .*already decided on line 2",
        ),
    ],
)
def test_each_bad_row_is_one_line_naming_the_file_and_line(
    tmp_path: Path, splits: pd.DataFrame, row: str, message: str
) -> None:
    path = write(tmp_path, HEADER + row + "\n")
    with pytest.raises(UserError, match=message) as raised:
        check_decisions(read_decisions(path), splits, path)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_a_bad_header_or_row_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="line 1: the header must be path,action,label,note"):
        read_decisions(write(tmp_path, "file,what\n"))
    with pytest.raises(UserError, match=r"line 2: expected 4 cells .* got 5; quote a note"):
        read_decisions(write(tmp_path, HEADER + "a.png,exclude,,one, two\n"))
    with pytest.raises(UserError, match="file not found; create it with the header line"):
        read_decisions(tmp_path / "missing.csv")


def test_several_problems_are_counted_after_the_first(tmp_path: Path, splits) -> None:
    path = write(tmp_path, HEADER + "x.png,exclude,,\ny.png,exclude,,\n")
    with pytest.raises(UserError, match=r"line 2: x.png: no such image .* \(and 1 more\)$"):
        check_decisions(read_decisions(path), splits, path)


def test_decisions_apply_to_their_images_only_and_keep_every_split(
    tmp_path: Path, splits: pd.DataFrame
) -> None:
    path = write(
        tmp_path,
        HEADER + "cat/train0.png,exclude,,\ndog/test1.png,relabel,cat,\ncat/val0.png,keep,,\n",
    )
    decisions = read_decisions(path)
    check_decisions(decisions, splits, path)
    curated = apply_decisions(splits, decisions, path)
    assert "cat/train0.png" not in set(curated["path"])
    relabelled = curated.set_index("path").loc["dog/test1.png"]
    assert (relabelled["label"], relabelled["split"]) == ("cat", "test")
    others = splits[~splits["path"].isin(["cat/train0.png", "dog/test1.png"])]
    assert others.merge(curated).shape[0] == len(others)  # everything else as it was
    assert decision_counts(decisions) == {"excluded": 1, "relabelled": 1, "kept": 1}

    emptied = write(tmp_path, HEADER + "dog/val0.png,relabel,cat,\ndog/val1.png,exclude,,\n")
    with pytest.raises(UserError, match="class 'dog' has no val image"):
        apply_decisions(splits, read_decisions(emptied), emptied)


def audit_rows(*rows: tuple[str, str, float, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["path", "issue", "score", "other", "suggested"])
    return frame.astype(str)  # as read_csv gives it


def test_proposals_keep_the_test_copy_and_the_surest_label_errors(splits) -> None:
    audit = audit_rows(
        ("cat/train0.png", "exact_duplicate", 0.0, "cat/test0.png", ""),
        ("cat/test0.png", "exact_duplicate", 0.0, "dog/val1.png", ""),  # a set of three
        ("dog/train0.png", "label_error", 0.001, "", "cat"),
        ("dog/train1.png", "label_error", 0.0001, "", "cat"),
        ("cat/val1.png", "label_error", 0.5, "", "dog"),  # above the threshold
        ("cat/train1.png", "outlier", 0.01, "", ""),
    )
    rows = propose(audit, splits, set(), max_label_quality=0.01, limit=10)
    kept = "cat/test0.png"
    assert rows.values.tolist() == [
        ["cat/train0.png", "exclude", "", "exact copy of cat/test0.png (test)", kept],
        [
            "dog/val1.png",
            "exclude",
            "",
            "exact copy of cat/test0.png (test), labelled cat there",
            kept,
        ],
        [
            "dog/train1.png",
            "relabel",
            "cat",
            "label quality 0.0001: the audit's model says cat",
            "",
        ],
        [
            "dog/train0.png",
            "relabel",
            "cat",
            "label quality 0.001: the audit's model says cat",
            "",
        ],
    ]
    assert propose(audit, splits, set(), 0.01, limit=1)["path"].tolist()[-1] == "dog/train1.png"
    # A set of copies someone decided on, and a decided image, are not proposed again.
    decided = {"dog/val1.png", "dog/train1.png"}
    assert propose(audit, splits, decided, 0.01, 10)["path"].tolist() == ["dog/train0.png"]


def test_proposals_are_appended_as_comments_that_read_back(tmp_path: Path, splits) -> None:
    path = tmp_path / "curation.csv"
    rows = pd.DataFrame(
        [["dog/train1.png", "relabel", "cat", "says cat, surely"]], columns=COLUMNS
    )
    add_proposals(path, rows)  # a new file gets the header
    assert read_decisions(path) == []
    (proposal,) = read_decisions(path, proposals=True)
    assert (proposal.path, proposal.label, proposal.note) == (
        "dog/train1.png",
        "cat",
        "says cat, surely",
    )
    # Accepting is deleting the #: the row then applies.
    path.write_text(path.read_text(encoding="utf-8").replace("#dog/", "dog/"), encoding="utf-8")
    (accepted,) = read_decisions(path)
    check_decisions([accepted], splits, path)
    curated = apply_decisions(splits, [accepted], path)
    assert curated.set_index("path").loc["dog/train1.png", "label"] == "cat"
