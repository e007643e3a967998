"""The SavedModel's in-graph image preparation against the pack stage's (OpenCV), pixel by
pixel: which cases are exact and how far the others are (the README quotes these)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from imgclf.data.imaging import load_like_pack
from imgclf.serving.decoding import pack_image

SIZE = (32, 32)


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
