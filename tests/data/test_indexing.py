"""Stage index: labels from folders, file names or a CSV; bad files rejected with a reason."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pandas as pd
import pytest

from imgclf.core.errors import UserError
from imgclf.data.indexing import build_index
from support.images import CLASSES, photo, write_image_folder
from support.params import make_params


def data_params(source: Path, **values: object):
    return make_params(data={"source": str(source), **values}).data


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and link under `root` with its mode and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        content = b"" if path.is_dir() or not path.exists() else path.read_bytes()
        state[str(path)] = (path.lstat().st_mode, hashlib.sha256(content).hexdigest())
    return state


def test_folder_labels_sorted_with_sizes_and_hashes(image_folder: Path) -> None:
    index = build_index(data_params(image_folder))
    manifest = index.manifest
    assert list(manifest.columns) == [
        "path",
        "label",
        "width",
        "height",
        "md5",
        "pixel_hash",
        "phash",
    ]
    assert len(manifest) == 3 * 8 and index.rejected.empty
    assert manifest["path"].tolist() == sorted(manifest["path"])
    assert set(manifest["label"]) == set(CLASSES)
    assert all(
        path.startswith(f"{label}/")
        for path, label in zip(manifest["path"], manifest["label"], strict=True)
    )
    first = manifest.iloc[0]
    height, width = cv2.imread(str(image_folder / first.path)).shape[:2]
    assert (first.width, first.height) == (width, height)
    # The MD5 of the file's bytes, as DVC would hash the file.
    assert first.md5 == hashlib.md5((image_folder / first.path).read_bytes()).hexdigest()
    assert index.summary() == {"images": 24, "rejected": 0, "classes": 3}


def test_bad_files_are_rejected_with_reasons(image_folder: Path, tmp_path: Path) -> None:
    (image_folder / "cat" / "empty.jpg").write_bytes(b"")
    (image_folder / "cat" / "notes.txt").write_text("not an image")
    (image_folder / "dog" / "truncated.png").write_bytes(
        cv2.imencode(".png", photo(40, 40, (1, 2, 3), 0))[1].tobytes()[:60]
    )
    (image_folder / "stray.jpg").write_bytes((image_folder / "cat" / "cat_00.jpg").read_bytes())
    (image_folder / "fox" / ".DS_Store").write_bytes(b"\0\1")
    (image_folder / "fox" / "Thumbs.db").write_bytes(b"\0\1")  # skipped, not rejected
    (image_folder / "dog" / "desktop.ini").write_text("[.ShellClassInfo]")
    (image_folder / ".hidden").mkdir()
    write_image_folder(image_folder / ".hidden", per_class=1)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((image_folder / "cat" / "cat_01.jpg").read_bytes())
    (image_folder / "fox" / "escape.jpg").symlink_to(outside)
    (image_folder / "fox" / "inside.jpg").symlink_to(image_folder / "fox" / "fox_00.jpg")
    (image_folder / "linked").symlink_to(image_folder / "cat", target_is_directory=True)

    index = build_index(data_params(image_folder), workers=2)
    reasons = dict(zip(index.rejected["path"], index.rejected["reason"], strict=True))
    assert reasons == {
        "cat/empty.jpg": "empty file",
        "cat/notes.txt": "not a decodable image (unknown format or corrupt data)",
        "dog/truncated.png": "not a decodable image (unknown format or corrupt data)",
        "stray.jpg": "not inside a class folder",
        "fox/escape.jpg": "symbolic link pointing outside the source folder",
        "linked": "symbolic link to a folder (not followed)",
    }
    assert index.rejected["path"].tolist() == sorted(reasons)
    assert "fox/inside.jpg" in set(index.manifest["path"])  # a link that stays inside is fine
    assert len(index.manifest) == 25
    assert index.rejected_fraction == pytest.approx(6 / 31)


def test_source_folder_is_never_modified(image_folder: Path) -> None:
    (image_folder / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    before = snapshot(image_folder)
    build_index(data_params(image_folder), workers=2)
    assert snapshot(image_folder) == before


def test_labels_from_file_names(tmp_path: Path) -> None:
    root = tmp_path / "kaggle"
    root.mkdir()
    for name in ("cat.1.jpg", "cat.2.jpg", "dog.10.jpg", "Dog.3.jpg"):
        cv2.imwrite(str(root / name), photo(30, 20, (9, 9, 9), len(name)))
    (root / "readme.md").write_text("hello")
    index = build_index(data_params(root, labels="filename", pattern=r"^(?P<label>[a-z]+)\."))
    assert dict(zip(index.manifest["path"], index.manifest["label"], strict=True)) == {
        "cat.1.jpg": "cat",
        "cat.2.jpg": "cat",
        "dog.10.jpg": "dog",
    }
    assert index.rejected["path"].tolist() == ["Dog.3.jpg", "readme.md"]
    assert "does not match data.pattern" in index.rejected["reason"].iloc[0]


def test_labels_from_csv(image_folder: Path, tmp_path: Path) -> None:
    rows = [
        ("cat/cat_00.jpg", "feline"),
        ("./dog/dog_00.jpg", "canine"),
        ("../outside.jpg", "x"),
        ("/etc/passwd", "x"),
        ("fox/missing.jpg", "fox"),
        ("cat/cat_00.jpg", "feline"),
        ("fox/fox_00.jpg", " "),
    ]
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(image_folder / "labels.csv", index=False)
    index = build_index(data_params(image_folder, labels="csv", manifest="labels.csv"))
    assert dict(zip(index.manifest["path"], index.manifest["label"], strict=True)) == {
        "cat/cat_00.jpg": "feline",
        "dog/dog_00.jpg": "canine",
    }
    reasons = dict(zip(index.rejected["path"], index.rejected["reason"], strict=True))
    assert reasons["../outside.jpg"].startswith("path leaves the source folder")
    assert reasons["/etc/passwd"].startswith("path leaves the source folder")
    assert reasons["fox/missing.jpg"] == "file not found"
    assert reasons["fox/fox_00.jpg"] == "empty label"
    assert len(index.rejected) == 5  # the duplicate is listed too


def test_missing_csv_columns_name_the_file(image_folder: Path) -> None:
    (image_folder / "labels.csv").write_text("file,class\na.jpg,cat\n")
    with pytest.raises(UserError, match=r"labels\.csv: missing column\(s\) path, label"):
        build_index(data_params(image_folder, labels="csv", manifest="labels.csv"))


def test_missing_or_empty_source(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder"):
        build_index(data_params(tmp_path / "nope"))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(UserError, match="no usable images"):
        build_index(data_params(tmp_path / "empty"))


def test_parallel_index_equals_serial(image_folder: Path) -> None:
    serial = build_index(data_params(image_folder), workers=1)
    parallel = build_index(data_params(image_folder), workers=2)
    pd.testing.assert_frame_equal(serial.manifest, parallel.manifest)


def test_index_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    first = write_image_folder(tmp_path / "a", per_class=3)
    second = tmp_path / "b"
    for path in sorted(first.rglob("*.jpg"), reverse=True):  # create in the opposite order
        target = second / path.relative_to(first)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        os.utime(target, (1, 1))
    pd.testing.assert_frame_equal(
        build_index(data_params(first)).manifest, build_index(data_params(second)).manifest
    )


# Without these capabilities root obeys file modes as any user does; a plain user needs none.
AS_A_USER = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)
INDEX_AND_PRINT = """
import sys
from imgclf.data.indexing import build_index
from support.params import make_params
index = build_index(make_params(data={"source": sys.argv[1]}).data)
print(index.manifest.to_json(orient="records"))
print(index.rejected.to_json(orient="records"))
"""


def test_unreadable_files_and_folders_are_rejected_with_their_reason(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", per_class=2)
    locked_file, locked_folder = root / "cat" / "cat_00.jpg", root / "fox"
    locked_file.chmod(0)
    locked_folder.chmod(0)
    try:
        result = subprocess.run(
            [*AS_A_USER, sys.executable, "-c", INDEX_AND_PRINT, str(root)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parents[1],
            check=True,
        )
    finally:
        locked_file.chmod(0o644)
        locked_folder.chmod(0o755)
    manifest, rejected = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    assert [row["path"] for row in manifest] == [
        "cat/cat_01.jpg",
        "dog/dog_00.jpg",
        "dog/dog_01.jpg",
    ]
    assert rejected == [
        {"path": "cat/cat_00.jpg", "reason": "cannot read file (Permission denied)"},
        {"path": "fox", "reason": "cannot read folder (Permission denied)"},
    ]


def test_predefined_split_folders(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for split in ("train", "test"):
        write_image_folder(root / split, per_class=2)
    (root / "loose.jpg").write_bytes((root / "train" / "cat" / "cat_00.jpg").read_bytes())
    (root / "extra").mkdir()
    (root / "extra" / "x.jpg").write_bytes(b"")
    index = build_index(data_params(root, predefined=True))
    manifest = index.manifest
    assert len(manifest) == 2 * 3 * 2
    assert set(manifest["label"]) == set(CLASSES)
    assert manifest["split"].tolist() == [path.split("/")[0] for path in manifest["path"]]
    assert set(index.rejected["path"]) == {"loose.jpg", "extra/x.jpg"}
    assert set(index.rejected["reason"]) == {"not inside a train/, val/ or test/ folder"}


def test_predefined_split_column(image_folder: Path) -> None:
    rows = [
        ("cat/cat_00.jpg", "cat", "train"),
        ("dog/dog_00.jpg", "dog", " test "),
        ("fox/fox_00.jpg", "fox", "holdout"),
    ]
    frame = pd.DataFrame(rows, columns=["path", "label", "split"])
    frame.to_csv(image_folder / "labels.csv", index=False)
    params = data_params(image_folder, labels="csv", manifest="labels.csv", predefined=True)
    index = build_index(params)
    assert dict(zip(index.manifest["path"], index.manifest["split"], strict=True)) == {
        "cat/cat_00.jpg": "train",
        "dog/dog_00.jpg": "test",
    }
    assert index.rejected["reason"].tolist() == ["split 'holdout' is not train, val or test"]
    (image_folder / "labels.csv").write_text("path,label\ncat/cat_00.jpg,cat\n")
    with pytest.raises(UserError, match=r"missing column\(s\) split"):
        build_index(params)
