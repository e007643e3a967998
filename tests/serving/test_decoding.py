"""The SavedModel's in-graph image preparation against the pack stage's (OpenCV), pixel by
pixel: which cases are exact and how far the others are (docs/using.md quotes these)."""

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from imgclf.data.imaging import load_like_pack
from imgclf.serving.decoding import pack_image

SIZE = (32, 32)
ORIENTATION_TAG = 0x0112


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Gradients and noise: every resize kernel sees different neighbours."""
    rows, columns = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).normal(0, 20, (height, width, 3))
    planes = np.stack([columns * 3 % 256, rows * 5 % 256, (columns + rows) * 2 % 256], -1)
    return np.clip(planes + noise, 0, 255).astype(np.uint8)


def largest_difference(path: Path, interpolation: str) -> int:
    expected = load_like_pack(path, SIZE, interpolation).astype(int)
    packed = pack_image(tf.constant(path.read_bytes()), SIZE, interpolation).numpy()
    return int(np.abs(packed.astype(int) - expected).max())


@pytest.mark.parametrize(
    ("name", "width", "height", "interpolation", "bound"),
    [
        ("x2.png", 64, 64, "area", 0),  # whole-number shrink
        ("wide.png", 80, 50, "area", 0),  # crop to square, then shrink by 1.56
        ("reduced.jpg", 200, 150, "area", 0),  # libjpeg decodes at 1/4 in both
        # Decoded at full size (40x40) and at 1/2 (100x70): the accurate integer IDCT, as
        # OpenCV's libjpeg runs it (TensorFlow's default fast one was 4-6 levels off).
        ("full.jpg", 40, 40, "area", 0),
        ("half.jpg", 100, 70, "area", 0),
        ("small.png", 28, 28, "area", 1),  # enlarged: other kernels, within one level
        ("linear.png", 50, 50, "linear", 1),
    ],
)
def test_in_graph_preparation_matches_pack(
    tmp_path: Path, name: str, width: int, height: int, interpolation: str, bound: int
) -> None:
    path = tmp_path / name
    cv2.imwrite(str(path), pattern(width, height))
    assert largest_difference(path, interpolation) <= bound


def test_transparency_is_blended_on_white_as_pack_does(tmp_path: Path) -> None:
    alpha = np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint8)
    path = tmp_path / "alpha.png"
    cv2.imwrite(str(path), np.dstack([pattern(64, 64), alpha]))
    assert largest_difference(path, "area") == 0


def write_oriented_jpeg(path: Path, image: np.ndarray, orientation: int, quality: int) -> None:
    """A JPEG whose EXIF says how to turn it, as a phone writes one (Pillow: big-endian TIFF)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(image).save(path, "JPEG", exif=exif, quality=quality)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("width", "height"), [(120, 64), (64, 130)])
def test_exif_orientation_is_applied_as_pack_applies_it(
    tmp_path: Path, orientation: int, width: int, height: int
) -> None:
    """Every EXIF orientation, on a landscape and a portrait photo (both decoded at 1/2): the
    graph crops the turned image, as pack does, not the stored one."""
    path = tmp_path / f"oriented{orientation}.jpg"
    write_oriented_jpeg(path, pattern(width, height), orientation, quality=90)
    assert largest_difference(path, "area") == 0


def test_a_little_endian_exif_block_is_read_too(tmp_path: Path) -> None:
    """The TIFF byte order of the EXIF block is the writer's choice ("II" here, "MM" above)."""
    path = tmp_path / "little.jpg"
    cv2.imwrite(str(path), pattern(90, 50))
    data = path.read_bytes()
    entry = struct.pack("<HHIHH", ORIENTATION_TAG, 3, 1, 8, 0)  # SHORT, one value: 8
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + b"\x00" * 4
    segment = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    path.write_bytes(data[:2] + app1 + data[2:])  # right after the start-of-image marker
    assert largest_difference(path, "area") == 0
    packed = pack_image(tf.constant(path.read_bytes()), SIZE, "area").numpy()
    unturned = pack_image(tf.constant(data), SIZE, "area").numpy()
    assert np.abs(packed - unturned).max() > 0  # the tag was read: the image turned
