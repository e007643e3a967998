"""Synthetic photo-like JPEGs for the benchmarks: seeded, generated once, in class folders.

Smooth gradients, texture, soft-edged shapes and sensor-like noise give JPEGs of about the
size and decoding cost of real photos (about 49 KiB at 500x375, q90).
"""

from pathlib import Path

import cv2
import numpy as np

PORTRAIT_FRACTION = 0.2
JPEG_QUALITY = 90


def ensure_photos(
    folder: Path, count: int, nominal: tuple[int, int], seed: int, classes: int
) -> Path:
    """Write `count` JPEGs of about `nominal` (w, h) into `classes` subfolders of `folder`,
    unless a complete set is there already (generated with the same arguments)."""
    marker = folder / ".complete"  # hidden, so indexing ignores it
    if marker.exists():
        return folder
    print(f"generating {count} photos in {folder} ...", flush=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        width, height = photo_dimensions(rng, nominal)
        path = folder / f"class{index % classes}" / f"{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = synthetic_photo(rng, width, height)
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"cannot write {path}")
    marker.touch()
    return folder


def photo_dimensions(rng: np.random.Generator, nominal: tuple[int, int]) -> tuple[int, int]:
    """Nominal (w, h) varied by up to ±4% per side, swapped to portrait for some photos."""
    width, height = (round(side * rng.uniform(0.96, 1.04)) for side in nominal)
    return (height, width) if rng.random() < PORTRAIT_FRACTION else (width, height)


def synthetic_photo(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A BGR image with smooth gradients, texture, soft-edged shapes and sensor-like noise."""
    coarse = rng.integers(0, 256, (*rng.integers(2, 5, size=2), 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    texture = rng.standard_normal((height // 10 + 1, width // 10 + 1, 3), dtype=np.float32)
    image += 18 * cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)
    scale = min(width, height)
    for _ in range(rng.integers(10, 30)):
        draw_shape(rng, image, scale)
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=scale / 300)
    image += rng.standard_normal(image.shape, dtype=np.float32) * 6
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_shape(rng: np.random.Generator, image: np.ndarray, scale: int) -> None:
    """Draw one random filled circle, ellipse or rectangle in place."""
    height, width = image.shape[:2]
    colour = tuple(float(value) for value in rng.uniform(0, 255, 3))
    centre = (int(rng.integers(width)), int(rng.integers(height)))
    radius = int(rng.integers(scale // 25, scale // 4))
    kind = rng.integers(3)
    if kind == 0:
        cv2.circle(image, centre, radius, colour, -1, cv2.LINE_AA)
    elif kind == 1:
        axes = (radius, int(radius * rng.uniform(0.3, 1)))
        cv2.ellipse(
            image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA
        )
    else:
        corner = (centre[0] + radius, centre[1] + int(radius * rng.uniform(0.3, 1.5)))
        cv2.rectangle(image, centre, corner, colour, -1)
