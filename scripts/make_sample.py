"""Build the small embedded demo dataset under ``data/sample/`` from Fashion-MNIST.

Provenance
----------
The images come unchanged from Fashion-MNIST (Copyright (c) 2017 Zalando SE, MIT License),
read from the IDX files of the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``).

Two disjoint sets of the same ten classes are written as PNG class folders:

* ``source/<class>/train_NNNNN.png`` -- drawn from the Fashion-MNIST *train* file, meant for
  pretraining a backbone;
* ``target/<class>/t10k_NNNNN.png`` -- drawn from the *t10k* file, the dataset the pipeline
  classifies.

``NNNNN`` is the image's index in the original IDX file. Selection is a seeded random draw
per class; pixel-identical duplicates are skipped, both within a set and across the two sets.
Output is deterministic: the same arguments give byte-identical files on every run.

Usage
-----
    apt-get install dataset-fashion-mnist
    python scripts/make_sample.py [--idx-dir DIR] [--out data/sample]
        [--source-per-class 400] [--target-per-class 150] [--seed 42]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "tshirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
IMAGE_SIDE = 28
SET_NAMES: tuple[str, str] = ("source", "target")
SPLIT_OF_SET: dict[str, str] = {"source": "train", "target": "t10k"}
TMP_NAME = ".make_sample.tmp"
PNG_PARAMS: list[int] = [cv2.IMWRITE_PNG_COMPRESSION, 9]

MIT_LICENSE = """\
MIT License

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a
copy of this software and associated documentation files (the "Software"),
to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included
in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY
CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


@dataclass
class Selection:
    """Images chosen for one set: (class id, original index) pairs plus skip counts."""

    split: str
    picks: list[tuple[int, int]] = field(default_factory=list)
    skipped_within: int = 0
    skipped_cross: int = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--idx-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    parser.add_argument("--source-per-class", type=int, default=400)
    parser.add_argument("--target-per-class", type=int, default=150)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.source_per_class < 1 or args.target_per_class < 1:
        parser.error("--source-per-class and --target-per-class must be >= 1")
    return args


def idx_paths(idx_dir: Path, split: str) -> tuple[Path, Path]:
    """Return the (images, labels) IDX paths of one split ('train' or 't10k')."""
    return (
        idx_dir / f"{split}-images-idx3-ubyte.gz",
        idx_dir / f"{split}-labels-idx1-ubyte.gz",
    )


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes, checking its magic number."""
    data = gzip.decompress(path.read_bytes())
    header_len = 4 * (1 + ndim)
    if len(data) < header_len:
        raise ValueError(f"{path}: truncated IDX header")
    found, *dims = struct.unpack(f">{1 + ndim}I", data[:header_len])
    if found != magic:
        raise ValueError(f"{path}: bad magic 0x{found:08x}, expected 0x{magic:08x}")
    count = int(np.prod(dims))
    if len(data) != header_len + count:
        raise ValueError(f"{path}: expected {count} data bytes, found {len(data) - header_len}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def load_split(idx_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load and validate the images (N, 28, 28) and labels (N,) of one split."""
    images_path, labels_path = idx_paths(idx_dir, split)
    images = read_idx(images_path, IMAGES_MAGIC, 3)
    labels = read_idx(labels_path, LABELS_MAGIC, 1)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"{images_path}: images are {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise ValueError(f"{split}: {len(images)} images but {len(labels)} labels")
    if labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{labels_path}: label {labels.max()} out of range")
    return images, labels


def pixel_hash(image: np.ndarray) -> bytes:
    """Hash of an image's raw pixel bytes, used to detect pixel-identical duplicates."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()


def select(
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    per_class: int,
    rng: np.random.Generator,
    excluded: set[bytes],
) -> tuple[Selection, set[bytes]]:
    """Draw per_class unique images per class, skipping duplicates and hashes in excluded."""
    result = Selection(split=split)
    seen: set[bytes] = set()
    for class_id in range(len(CLASS_NAMES)):
        candidates = np.flatnonzero(labels == class_id)
        taken = 0
        for index in rng.permutation(candidates).tolist():
            if taken == per_class:
                break
            digest = pixel_hash(images[index])
            if digest in excluded:
                result.skipped_cross += 1
            elif digest in seen:
                result.skipped_within += 1
            else:
                seen.add(digest)
                result.picks.append((class_id, index))
                taken += 1
        if taken < per_class:
            raise ValueError(f"{split}: only {taken} unique images for {CLASS_NAMES[class_id]}")
    return result, seen


def png_relpath(set_name: str, split: str, class_id: int, index: int) -> Path:
    """Relative path of one sample image, e.g. source/coat/train_01234.png."""
    return Path(set_name) / CLASS_NAMES[class_id] / f"{split}_{index:05d}.png"


def write_set(root: Path, set_name: str, selection: Selection, images: np.ndarray) -> None:
    """Write one set's images as lossless 8-bit grayscale PNG files under root."""
    for class_name in CLASS_NAMES:
        (root / set_name / class_name).mkdir(parents=True)
    for class_id, index in selection.picks:
        path = root / png_relpath(set_name, selection.split, class_id, index)
        if not cv2.imwrite(str(path), images[index], PNG_PARAMS):
            raise OSError(f"cv2.imwrite failed for {path}")


def verify(root: Path, sets: dict[str, tuple[Selection, np.ndarray]]) -> None:
    """Re-read every written PNG; fail on lossy output or any duplicate within/across sets."""
    owner: dict[bytes, Path] = {}
    for set_name, (selection, images) in sets.items():
        written = sorted((root / set_name).rglob("*.png"))
        if len(written) != len(selection.picks):
            raise AssertionError(
                f"{set_name}: {len(written)} PNGs, expected {len(selection.picks)}"
            )
        for class_id, index in selection.picks:
            rel = png_relpath(set_name, selection.split, class_id, index)
            decoded = cv2.imread(str(root / rel), cv2.IMREAD_UNCHANGED)
            if (
                decoded is None
                or decoded.dtype != np.uint8
                or decoded.shape != (IMAGE_SIDE, IMAGE_SIDE)
            ):
                raise AssertionError(f"{rel}: not a 28x28 8-bit grayscale PNG")
            if not np.array_equal(decoded, images[index]):
                raise AssertionError(f"{rel}: pixels differ from the IDX source")
            digest = pixel_hash(decoded)
            if digest in owner:
                raise AssertionError(f"duplicate pixels: {rel} and {owner[digest]}")
            owner[digest] = rel


def readme_text(args: argparse.Namespace, selections: dict[str, Selection]) -> str:
    """Deterministic README.md describing the sample, its provenance and its licence."""
    per_class = {"source": args.source_per_class, "target": args.target_per_class}
    purposes = {
        "source": "pretraining a backbone",
        "target": "the dataset the pipeline classifies",
    }
    lines = [
        "# Demo sample: Fashion-MNIST subset",
        "",
        "Small embedded image-classification dataset for demos and tests. Generated by",
        "`scripts/make_sample.py`; do not edit by hand.",
        "",
        "| set | purpose | drawn from | per class | images |",
        "|---|---|---|---|---|",
    ]
    for name in SET_NAMES:
        lines.append(
            f"| `{name}/` | {purposes[name]} | Fashion-MNIST `{selections[name].split}` "
            f"| {per_class[name]} | {len(selections[name].picks)} |"
        )
    sections = ("\n".join(lines), method_section(args), classes_section(), licence_section())
    return "\n\n".join(sections)


def method_section(args: argparse.Namespace) -> str:
    """README text on the file layout and how the sample was generated."""
    return (
        "Layout: `<set>/<class>/<split>_<index>.png`, where `<index>` is the image's\n"
        "zero-based position in the original IDX file (`train` = 60,000 training images,\n"
        "`t10k` = 10,000 test images). Images are the original 28x28 8-bit grayscale\n"
        "pixels, stored losslessly as PNG.\n\n"
        "## How it was made\n\n"
        "```sh\n"
        "apt-get install dataset-fashion-mnist\n"
        f"python scripts/make_sample.py --source-per-class {args.source_per_class} "
        f"--target-per-class {args.target_per_class} --seed {args.seed}\n"
        "```\n\n"
        f"Per class, images are drawn at random (`numpy.random.default_rng({args.seed})`).\n"
        "Pixel-identical duplicates (SHA-256 of the pixel bytes) are skipped, so no image\n"
        "appears twice in a set or in both sets; the script re-reads and verifies the output.\n"
        "Rerunning it produces byte-identical files."
    )


def classes_section() -> str:
    """README table mapping label ids to class folder names."""
    rows = "\n".join(f"| {i} | `{name}` |" for i, name in enumerate(CLASS_NAMES))
    return "## Classes\n\n| label | folder |\n|---|---|\n" + rows


def licence_section() -> str:
    """README section with the Fashion-MNIST licence notice and full MIT text."""
    return (
        "## Licence\n\n"
        "The images are from Fashion-MNIST, Copyright (c) 2017 Zalando SE,\n"
        "<https://github.com/zalandoresearch/fashion-mnist>, released under the MIT License\n"
        "(also in `LICENSE` next to this file):\n\n"
        "```text\n" + MIT_LICENSE + "```\n"
    )


def replace_outputs(tmp: Path, out: Path) -> None:
    """Swap the freshly built tree in tmp into out, removing the previous sample first."""
    for set_name in SET_NAMES:
        if (out / set_name).exists():
            shutil.rmtree(out / set_name)
    for name in (*SET_NAMES, "README.md", "LICENSE"):
        (tmp / name).replace(out / name)
    tmp.rmdir()


def build(args: argparse.Namespace, tmp: Path) -> dict[str, Selection]:
    """Select, write and verify both sets into tmp; return the selections."""
    rng = np.random.default_rng(args.seed)
    per_class = {"source": args.source_per_class, "target": args.target_per_class}
    excluded: set[bytes] = set()
    sets: dict[str, tuple[Selection, np.ndarray]] = {}
    for set_name in SET_NAMES:
        split = SPLIT_OF_SET[set_name]
        images, labels = load_split(args.idx_dir, split)
        selection, hashes = select(images, labels, split, per_class[set_name], rng, excluded)
        excluded |= hashes
        write_set(tmp, set_name, selection, images)
        sets[set_name] = (selection, images)
    verify(tmp, sets)
    selections = {name: sel for name, (sel, _) in sets.items()}
    (tmp / "README.md").write_text(readme_text(args, selections), encoding="utf-8")
    (tmp / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")
    return selections


def check_inputs(idx_dir: Path) -> None:
    """Exit with a one-line message if any Fashion-MNIST IDX file is missing."""
    for split in SPLIT_OF_SET.values():
        for path in idx_paths(idx_dir, split):
            if not path.is_file():
                sys.exit(
                    f"error: {path} not found; install it with "
                    "`apt-get install dataset-fashion-mnist` or pass --idx-dir"
                )


def main(argv: list[str] | None = None) -> None:
    """Entry point: build the sample in a temporary folder, then swap it into place."""
    args = parse_args(argv)
    check_inputs(args.idx_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / TMP_NAME
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        selections = build(args, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_outputs(tmp, args.out)
    files = [p for name in SET_NAMES for p in (args.out / name).rglob("*.png")]
    total = sum(p.stat().st_size for p in files)
    src, tgt = selections["source"], selections["target"]
    print(
        f"make_sample: source {len(src.picks)} + target {len(tgt.picks)} images "
        f"({len(CLASS_NAMES)} classes), {total} bytes of PNG in {args.out}; skipped duplicates: "
        f"within source {src.skipped_within}, within target {tgt.skipped_within}, "
        f"target-vs-source {tgt.skipped_cross}"
    )


if __name__ == "__main__":
    main()
