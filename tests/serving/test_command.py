"""imgclf.serving.command, the command line: output formats, folder walking, one-line errors."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import FunctionTransformer

from imgclf.core.errors import UserError
from imgclf.core.fileio import write_json
from imgclf.serving.command import Choice, chosen_model, iter_inputs, main, top_k
from support import REPO
from support.images import CLASSES
from support.models import classify_all, tiny_classifier

LINE = re.compile(r"^(?P<path>[^\t]+)\t(?P<ranked>\w+ \(\d\.\d{3}\)(, \w+ \(\d\.\d{3}\))*)$")


def run_main(args: list[str]) -> int:
    """`main(args)`'s exit code (0 when it returns)."""
    try:
        main(args)
    except SystemExit as exit_:
        return exit_.code
    return 0


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


# --------------------------------------------------------------------------------------------
# Crafted model files (a shared remote or a download): refused, nothing they hold runs
# --------------------------------------------------------------------------------------------


def crafted_keras(path: Path, kind: str, marker: Path) -> None:
    """A classifier whose file, if loaded unsafely, would run code that creates `marker`."""
    import keras

    from imgclf.models.modelcard import ModelCard

    inputs = keras.Input((4, 4, 3))
    if kind == "lambda":
        # The path is a constant in the function's code, which the file stores (marshal).
        touch = eval(
            f"lambda t: t + float(__import__('pathlib').Path({str(marker)!r}).touch() is None)"
        )
        hidden = keras.layers.Lambda(touch)(inputs)
    else:
        hidden = keras.layers.Flatten()(inputs)
    keras.Model(inputs, keras.layers.Dense(len(CLASSES))(hidden)).save(path)
    if kind == "config":  # a layer's initializer names subprocess.Popen, with arguments
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        config = json.loads(entries["config.json"])
        config["config"]["layers"][-1]["config"]["kernel_initializer"] = {
            "module": "subprocess",
            "class_name": "Popen",
            "config": {"args": ["touch", str(marker)]},
            "registered_name": None,
        }
        entries["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    card = {"label_names": CLASSES, "image_size": (4, 4), "input_size": (4, 4)}
    ModelCard(kind="keras", **card).write(path)


@pytest.mark.parametrize(
    ("kind", "refusal"),
    [
        ("lambda", "refusing to load a Lambda layer: it holds Python code"),
        ("config", "refusing to load subprocess.Popen (not a Keras or imgclf object)"),
        ("skops", "refusing to load untrusted type(s) builtins.exec"),
    ],
)
def test_crafted_model_files_are_refused_in_one_line(
    kind: str, refusal: str, folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "code-ran"
    if kind == "skops":
        import skops.io as sio

        from imgclf.models.modelcard import ModelCard

        model = tmp_path / "logreg.skops"
        sio.dump(
            FunctionTransformer(exec, kw_args={"source": f"open({str(marker)!r}, 'w')"}), model
        )
        card = {"label_names": CLASSES, "image_size": (4, 4), "pooling": "avg"}
        ModelCard(kind="logreg", backbone="backbone.keras", **card).write(model)
    else:
        model = tmp_path / "cnn.keras"
        crafted_keras(model, kind, marker)
        marker.unlink(missing_ok=True)  # the Lambda ran once while the model was built
    assert run_main(["--model", str(model), str(folder)]) == 1
    [message] = caplog.messages
    assert message.startswith(f"error: {model}: {refusal}")
    assert not marker.exists()
    if kind == "lambda":  # the file really carries code: an unsafe load runs it
        import keras

        keras.models.load_model(model, safe_mode=False)
        assert marker.exists()


@pytest.mark.slow  # a fresh process imports TensorFlow: several seconds
def test_command_line_prints_results_and_one_error_line(
    keras_model: Path, folder: Path, tmp_path: Path
) -> None:
    """The real process: stdout has the results, stderr one line per bad file, exit 1."""
    images = tmp_path / "images"
    shutil.copytree(folder / "cat", images)
    (images / "empty.jpg").write_bytes(b"")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "imgclf.classify",
            "--model",
            str(keras_model),
            str(images),
        ],
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


# --------------------------------------------------------------------------------------------
# The model chosen on val
# --------------------------------------------------------------------------------------------


def write_choice(root: Path, chosen: str, metrics: dict[str, float]) -> Path:
    summary = root / "metrics/evaluation/summary.json"
    write_json(summary, {"chosen": chosen, "vs_chosen": {}})
    write_json(root / f"metrics/evaluation/models/{chosen}.json", metrics)
    return summary


def test_the_chosen_model_comes_with_its_crops_and_temperature(tmp_path: Path) -> None:
    ten_crops = {"test.accuracy": 0.8, "test_1crop.accuracy": 0.7, "temperature": 1.5}
    summary = write_choice(tmp_path, "cnn/seed3", ten_crops)
    models, metrics = tmp_path / "models", summary.parent / "models"
    assert chosen_model(summary, models, metrics) == Choice(models / "cnn/seed3.keras", 10, 1.5)
    summary = write_choice(tmp_path, "logreg", {"test.accuracy": 0.8})
    assert chosen_model(summary, models, metrics) == Choice(models / "logreg.skops", 1, 1.0)


@pytest.mark.parametrize(
    ("chosen", "message"),
    [("ensemble", "the chosen model is the ensemble"), (None, "no chosen model")],
)
def test_no_single_chosen_model_is_one_line(tmp_path: Path, chosen: str | None, message: str):
    summary = tmp_path / "summary.json"
    if chosen:
        write_choice(tmp_path, chosen, {})
        summary = tmp_path / "metrics/evaluation/summary.json"
    with pytest.raises(UserError, match=message) as caught:
        chosen_model(summary, tmp_path / "models", tmp_path)
    assert "\n" not in str(caught.value)


def test_without_model_classify_runs_the_chosen_one_scaled(
    keras_model: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """From the project's folder: the chosen model's file, crops and temperature."""
    (tmp_path / "models/cnn").mkdir(parents=True)
    shutil.copy(keras_model, tmp_path / "models/cnn/seed0.keras")
    write_choice(tmp_path, "cnn/seed0", {"test_1crop.accuracy": 0.5, "temperature": 2.0})
    monkeypatch.chdir(tmp_path)
    images = sorted(str(path) for path in (folder / "cat").iterdir())
    assert run_main(["--csv", "chosen.csv", *images]) == 0
    expected = classify_all(keras_model, images, crops=10)
    got = pd.read_csv("chosen.csv")
    for path in images:
        top = got[(got.path == path) & (got["rank"] == 1)].probability.item()
        unscaled = expected[path].max()
        assert top < unscaled  # softened by the temperature of 2
        scaled = np.sqrt(expected[path]) / np.sqrt(expected[path]).sum()
        assert top == pytest.approx(scaled.max(), abs=1e-6)
