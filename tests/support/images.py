"""Synthetic photos and class-per-subfolder image folders."""

from pathlib import Path

import cv2
import numpy as np

CLASSES = ("cat", "dog", "fox")
# (width, height): landscape, portrait, square, tiny and odd sizes.
SIZES = ((64, 48), (40, 72), (50, 50), (23, 31), (97, 41), (36, 36), (48, 64), (70, 30))


def photo(width: int, height: int, colour: tuple[int, int, int], seed: int) -> np.ndarray:
    """A BGR test image: a class colour, a gradient and noise, so every image differs."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    image = np.asarray(colour, np.float32)[None, None, :] + ramp + noise
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image_folder(root: Path, per_class: int = 8, extension: str = ".jpg") -> Path:
    """Class-per-subfolder images of varied sizes and aspect ratios under `root`."""
    for label_index, label in enumerate(CLASSES):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        colour = tuple(int(value) for value in np.roll((200, 60, 20), label_index))
        for index in range(per_class):
            width, height = SIZES[index % len(SIZES)]
            image = photo(width, height, colour, seed=label_index * 100 + index)
            cv2.imwrite(str(folder / f"{label}_{index:02d}{extension}"), image)
    return root
