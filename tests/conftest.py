"""Shared fixtures: tiny synthetic image folders and params built from the repo's params.yaml."""

import copy
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from imgclf.config import Params, build_section

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """3 classes × 8 JPEGs of varied sizes."""
    return write_image_folder(tmp_path / "images")


def repo_params_dict() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def make_params(**sections: dict[str, Any]) -> Params:
    """The repo's params with some keys replaced, e.g. make_params(split={"val": 0.2})."""
    raw = copy.deepcopy(repo_params_dict())
    for section, values in sections.items():
        raw[section].update(values)
    return build_section(Params, raw)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory):
    """The tiny pipeline built once per session and committed; tests take copies of it."""
    from test_pipeline import Project  # a test module: imported when the fixture runs

    project = Project(tmp_path_factory.mktemp("built") / "project")
    project.first_run = project.repro()
    project.commit("built")
    return project
