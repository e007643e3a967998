"""imgclf.serving.classifier: a model file classifies images with the same numbers as the pipeline,
for Keras and logistic-regression models and every format the pack stage accepts."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from imgclf.data.hdf5io import load_features
from imgclf.data.imaging import jpeg_reduction, read_image
from imgclf.data.indexing import build_index
from imgclf.data.packing import pack_split
from imgclf.models.features import extract_features, feature_extractor
from imgclf.models.logistic import load_logreg
from imgclf.models.predicting import load_keras_model, predict_pack
from imgclf.serving.classifier import classify_paths, load_classifier
from imgclf.serving.command import iter_inputs
from support.images import CLASSES, photo
from support.models import IMAGE_SIZE, classify_all
from support.params import make_params


@pytest.fixture(scope="module")
def pack(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of `folder` packed by the pack stage's own code."""
    params = make_params(data={"source": str(folder)}, pack={"batch_size": 5})
    splits = build_index(params.data).manifest.assign(split="train")
    out = tmp_path_factory.mktemp("pack") / "train.h5"
    pack_split(splits, "train", folder, out, IMAGE_SIZE, params.pack, seed=0, workers=1)
    reductions = [jpeg_reduction(w, h, IMAGE_SIZE) for w, h in splits[["width", "height"]].values]
    assert max(reductions) > 1 and min(reductions) == 1  # both decoding paths are covered
    return out


# --------------------------------------------------------------------------------------------
# Same numbers as the pipeline
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crops", [1, 10])
def test_keras_probabilities_equal_predict_on_the_pack(
    keras_model: Path, folder: Path, pack: Path, crops: int
) -> None:
    expected = predict_pack(load_keras_model(keras_model), pack, batch_size=5, crops=crops)
    paths = [str(folder / path) for path in expected.paths]
    got = classify_all(keras_model, paths, crops=crops)
    for path, probabilities in zip(expected.paths, expected.probabilities, strict=True):
        np.testing.assert_allclose(got[str(folder / path)], probabilities, rtol=1e-5, atol=1e-7)
    assert len({tuple(p.round(3)) for p in expected.probabilities}) > 1  # not all the same


def test_logreg_probabilities_equal_features_then_logreg(
    logreg_model: Path, folder: Path, pack: Path, tmp_path: Path
) -> None:
    backbone = load_keras_model(logreg_model.parent.parent / "backbone.keras")
    extract_features(feature_extractor(backbone, "max"), pack, tmp_path / "f.h5", batch_size=5)
    features = load_features(tmp_path / "f.h5")
    expected = load_logreg(logreg_model).predict_proba(features.features)
    got = classify_all(logreg_model, [str(folder / path) for path in features.paths])
    for path, probabilities in zip(features.paths, expected, strict=True):
        np.testing.assert_allclose(got[str(folder / path)], probabilities, rtol=1e-5, atol=1e-7)


def test_batch_size_does_not_change_results(keras_model: Path, folder: Path) -> None:
    paths = list(iter_inputs([str(folder)]))
    one, many = classify_all(keras_model, paths, 1), classify_all(keras_model, paths, 5)
    for path in paths:
        np.testing.assert_allclose(one[path], many[path], rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Every format the pack stage accepts
# --------------------------------------------------------------------------------------------


def _rgb(height: int = 30, width: int = 40) -> np.ndarray:
    return photo(width, height, (200, 60, 20), seed=1)[:, :, ::-1]  # photo() is BGR


FORMATS = {
    "jpeg": lambda p: cv2.imwrite(str(p.with_suffix(".jpg")), _rgb()[:, :, ::-1]),
    "gray_png": lambda p: Image.fromarray(_rgb()[:, :, 0], "L").save(p.with_suffix(".png")),
    "rgba_png": lambda p: Image.fromarray(np.dstack([_rgb(), _rgb()[:, :, 1]]), "RGBA").save(
        p.with_suffix(".png")
    ),
    "png_16bit": lambda p: cv2.imwrite(str(p.with_suffix(".png")), _rgb().astype(np.uint16) * 257),
    "palette_png": lambda p: (
        Image.fromarray(_rgb(), "RGB").convert("P").save(p.with_suffix(".png"))
    ),
    "bmp": lambda p: cv2.imwrite(str(p.with_suffix(".bmp")), _rgb()),
    "tiff": lambda p: Image.fromarray(_rgb(), "RGB").save(p.with_suffix(".tif")),
    "webp": lambda p: Image.fromarray(_rgb(), "RGB").save(p.with_suffix(".webp"), quality=90),
    "cmyk_jpeg": lambda p: (
        Image.fromarray(_rgb(), "RGB").convert("CMYK").save(p.with_suffix(".jpg"), quality=95)
    ),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_packable_format_is_classified_as_the_pipeline_packs_it(
    name: str, keras_model: Path, tmp_path: Path
) -> None:
    """The same numbers as the pack stage's code on the same file, and the colours a reference
    decoder (Pillow) sees: a channel swap or a format-specific decode shows in either."""
    source = tmp_path / "images"
    for label in CLASSES:  # the model's classes, by name
        (source / label).mkdir(parents=True)
        FORMATS[name](source / label / name)
    [path] = list((source / CLASSES[0]).iterdir())
    params = make_params(data={"source": str(source)}, pack={"batch_size": 5})
    splits = build_index(params.data).manifest.assign(split="train")
    pack = tmp_path / "pack.h5"
    pack_split(splits, "train", source, pack, IMAGE_SIZE, params.pack, seed=0, workers=1)
    expected = predict_pack(load_keras_model(keras_model), pack, batch_size=5, crops=1)
    got = classify_all(keras_model, [str(path)])[str(path)]
    np.testing.assert_allclose(got, expected.probabilities[0], rtol=1e-5, atol=1e-7)
    with Image.open(path) as image:  # transparency goes on white, as the pipeline does
        white = Image.new("RGBA", image.size, "white")
        reference = np.asarray(
            Image.alpha_composite(white, image.convert("RGBA")).convert("RGB"), np.float64
        )
    decoded = read_image(str(path)).astype(np.float64)
    assert decoded.shape == reference.shape
    # Channel means: R, G and B differ by 60-180 levels in these images; decoders by a few.
    np.testing.assert_allclose(decoded.mean((0, 1)), reference.mean((0, 1)), atol=4)


def test_results_stream_batch_by_batch(keras_model: Path, folder: Path) -> None:
    """Nothing past the first batch is read before the first result comes out."""
    seen: list[str] = []

    def paths():
        for path in iter_inputs([str(folder)]):
            seen.append(path)
            yield path

    results = classify_paths(load_classifier(keras_model), paths(), batch_size=3)
    next(results)
    assert len(seen) == 3
