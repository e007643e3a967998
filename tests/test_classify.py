"""imgclf.classify: the pipeline's preprocessing from metadata, every packable format, output
formats, folder walking, and one-line errors."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import CLASSES, make_params, photo, write_image_folder
from imgclf.backbones import build_backbone
from imgclf.classify import classify_paths, iter_inputs, load_classifier, main, top_k
from imgclf.features import extract_features, feature_extractor
from imgclf.hdf5io import load_features
from imgclf.imaging import jpeg_reduction, read_image
from imgclf.indexing import build_index
from imgclf.logistic import build_logreg, load_logreg, save_logreg
from imgclf.modelmeta import write_metadata
from imgclf.packing import pack_split
from imgclf.predicting import load_keras_model, predict_pack

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZE = (20, 24)  # packed (h, w); sides differ so a swap shows
INPUT_SIZE = (14, 18)  # the Keras model's centre crop
LINE = re.compile(r"^(?P<path>[^\t]+)\t(?P<ranked>\w+ \(\d\.\d{3}\)(, \w+ \(\d\.\d{3}\))*)$")


def tiny_classifier() -> keras.Model:
    """Position-sensitive (conv, flatten, dense), with large weights so outputs differ."""
    inputs = keras.Input((*INPUT_SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    maps = keras.layers.Conv2D(2, 3, strides=2, activation="relu")(scaled)
    logits = keras.layers.Dense(
        len(CLASSES), kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=0)
    )(keras.layers.Flatten()(maps))
    return keras.Model(inputs, keras.layers.Softmax(name="predictions")(logits))


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keras") / "cnn.keras"
    keras.utils.set_random_seed(0)
    tiny_classifier().save(path)
    metadata = {"kind": "keras", "model": "cnn/seed0", "label_names": list(CLASSES)}
    write_metadata(
        path, {**metadata, "image_size": list(IMAGE_SIZE), "input_size": list(INPUT_SIZE)}
    )
    return path


@pytest.fixture(scope="module")
def logreg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/logreg.skops on features of a random minivggnet backbone.keras beside models/."""
    root = tmp_path_factory.mktemp("logreg")
    keras.utils.set_random_seed(0)
    backbone = build_backbone("minivggnet", (*IMAGE_SIZE, 3), "none")
    backbone.save(root / "backbone.keras")
    spec = {"arch": "minivggnet", "weights": "none", "image_size": list(IMAGE_SIZE)}
    write_metadata(root / "backbone.keras", {"kind": "backbone", **spec})
    labels = np.arange(30) % len(CLASSES)
    images = np.stack(
        [
            cv2.resize(photo(30, 30, (label * 90, 200 - label * 60, 40), i), IMAGE_SIZE[::-1])
            for i, label in enumerate(labels)
        ]
    ).astype(np.float32)
    features = feature_extractor(backbone, "max").predict(images, verbose=0)
    model = build_logreg(max_iter=500, seed=0).fit(features, labels)
    metadata = {"kind": "logreg", "label_names": list(CLASSES), "pooling": "max", **spec}
    save_logreg(
        model, root / "models" / "logreg.skops", {**metadata, "backbone": "../backbone.keras"}
    )
    return root / "models" / "logreg.skops"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes × 4 JPEGs of varied sizes, several large enough for JPEG reduced decoding."""
    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=4)


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


def classify_all(model: Path, paths: list[str], batch_size: int = 4) -> dict[str, np.ndarray]:
    results = dict(classify_paths(load_classifier(model), paths, batch_size))
    assert all(isinstance(result, np.ndarray) for result in results.values()), results
    return results


def run_main(args: list[str]) -> int:
    """`main(args)`'s exit code (0 when it returns)."""
    try:
        main(args)
    except SystemExit as exit_:
        return exit_.code
    return 0


# --------------------------------------------------------------------------------------------
# Same numbers as the pipeline
# --------------------------------------------------------------------------------------------


def test_keras_probabilities_equal_predict_on_the_pack(
    keras_model: Path, folder: Path, pack: Path
) -> None:
    expected = predict_pack(load_keras_model(keras_model), pack, batch_size=5)
    got = classify_all(keras_model, [str(folder / path) for path in expected.paths])
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
def test_every_packable_format_is_classified(name: str, keras_model: Path, tmp_path: Path) -> None:
    FORMATS[name](tmp_path / name)
    [path] = [str(path) for path in tmp_path.iterdir()]
    read_image(path)  # the fixture really is a decodable file
    probabilities = classify_all(keras_model, [path])[path]
    assert probabilities.shape == (len(CLASSES),)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def test_top_k_orders_by_probability_and_breaks_ties_by_class() -> None:
    probabilities = np.array([0.2, 0.5, 0.1, 0.2])
    assert top_k(probabilities, "abcd", 3) == [("b", 0.5), ("a", 0.2), ("d", 0.2)]


def test_lines_list_the_top_k_most_probable_first(
    keras_model: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = list(iter_inputs([str(folder)]))[:3]
    assert run_main(["--model", str(keras_model), "--top-k", "2", *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = classify_all(keras_model, paths)
    assert [LINE.match(line)["path"] for line in lines] == paths
    for line, path in zip(lines, paths, strict=True):
        order = np.argsort(-expected[path])[:2]
        names = ", ".join(f"{CLASSES[i]} ({expected[path][i]:.3f})" for i in order)
        assert line == f"{path}\t{names}"


def test_top_k_is_capped_at_the_number_of_classes(
    keras_model: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = next(iter_inputs([str(folder)]))
    assert run_main(["--model", str(keras_model), "--top-k", "10", path]) == 0
    [line] = capsys.readouterr().out.splitlines()
    ranked = LINE.match(line)["ranked"].split(", ")
    assert sorted(item.split()[0] for item in ranked) == sorted(CLASSES)
    probabilities = [float(item.split("(")[1].rstrip(")")) for item in ranked]
    assert probabilities == sorted(probabilities, reverse=True)


def test_csv_has_k_rows_per_image(
    keras_model: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "predictions.csv"
    args = ["--model", str(keras_model), "--top-k", "2", "--csv", str(out), str(folder)]
    assert run_main([*args, "--batch-size", "5"]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_bytes().startswith(b"path,rank,label,probability\n")
    assert b"\r" not in out.read_bytes()
    frame = pd.read_csv(out)
    paths = list(iter_inputs([str(folder)]))
    assert frame["path"].tolist() == [path for path in paths for _ in range(2)]
    assert frame["rank"].tolist() == [1, 2] * len(paths)
    expected = classify_all(keras_model, paths)
    for row in frame.itertuples():
        probabilities = expected[row.path]
        assert row.label == CLASSES[np.argsort(-probabilities)[row.rank - 1]]
        assert row.probability == pytest.approx(np.sort(probabilities)[-row.rank], abs=1e-6)
    assert [p.name for p in out.parent.iterdir()] == ["predictions.csv"]  # no temporary left


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def test_folders_are_walked_sorted_skipping_hidden_files(tmp_path: Path) -> None:
    for name in ("b.jpg", "a/z.jpg", "a/b/y.png", "a/.hidden.jpg", ".git/x.jpg", "c.bmp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    single = tmp_path / "a" / ".named_explicitly.jpg"
    single.write_bytes(b"")
    found = list(iter_inputs([str(single), str(tmp_path)]))
    relative = [os.path.relpath(path, tmp_path) for path in found]
    assert relative == ["a/.named_explicitly.jpg", "a/b/y.png", "a/z.jpg", "b.jpg", "c.bmp"]
    assert found[1] == str(tmp_path / "a" / "b" / "y.png")  # folder argument + relative path


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


# --------------------------------------------------------------------------------------------
# Errors: one line each, no traceback
# --------------------------------------------------------------------------------------------


def test_unreadable_image_is_reported_and_the_others_go_on(
    keras_model: Path,
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = list(iter_inputs([str(folder)]))[:2]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a JPEG")
    missing = tmp_path / "missing.png"
    args = ["--model", str(keras_model), good[0], str(broken), str(missing), good[1]]
    assert run_main(args) == 1
    assert [LINE.match(line)["path"] for line in capsys.readouterr().out.splitlines()] == good
    assert caplog.messages == [
        f"error: {broken}: not a decodable image (unknown format or corrupt data)",
        f"error: {missing}: file not found",
    ]


def test_missing_model_is_one_line(
    tmp_path: Path, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run_main(["--model", str(tmp_path / "nope.keras"), str(folder)]) == 1
    assert caplog.messages == [f"error: {tmp_path / 'nope.keras'}: file not found"]


def test_model_without_metadata_is_one_line(
    tmp_path: Path, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tiny_classifier().save(tmp_path / "plain.keras")
    assert run_main(["--model", str(tmp_path / "plain.keras"), str(folder)]) == 1
    [message] = caplog.messages
    assert message.startswith(f"error: {tmp_path / 'plain.keras'}: not a model written by")


def test_backbone_is_not_a_classifier(
    logreg_model: Path, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backbone = logreg_model.parent.parent / "backbone.keras"
    assert run_main(["--model", str(backbone), str(folder)]) == 1
    assert caplog.messages == [
        f"error: {backbone}: a model of kind 'backbone' does not classify images; "
        "use a cnn, finetune or logreg model"
    ]


def test_logreg_without_its_backbone_is_one_line(
    logreg_model: Path, folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    moved = tmp_path / "elsewhere" / "logreg.skops"
    moved.parent.mkdir()
    shutil.copy(logreg_model, moved)
    assert run_main(["--model", str(moved), str(folder)]) == 1
    assert caplog.messages == [
        f"error: {moved}: its backbone {tmp_path / 'backbone.keras'} is missing "
        "(stored as '../backbone.keras', relative to the model's folder)"
    ]


@pytest.mark.slow  # a fresh process imports TensorFlow: several seconds
def test_command_line_prints_results_and_one_error_line(
    keras_model: Path, folder: Path, tmp_path: Path
) -> None:
    """The real process: stdout has the results, stderr one line per bad file, exit 1."""
    images = tmp_path / "images"
    shutil.copytree(folder / "cat", images)
    (images / "empty.jpg").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "imgclf.classify", "--model", str(keras_model), str(images)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(LINE.match(line) for line in lines)
    assert "Traceback" not in result.stderr
    # TensorFlow's own start-up notices may precede it; ours is the only imgclf line.
    ours = [line for line in result.stderr.splitlines() if line.startswith("imgclf")]
    assert ours == [f"imgclf: error: {images / 'empty.jpg'}: empty file"]
