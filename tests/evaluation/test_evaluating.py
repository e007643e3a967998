"""The tail's decisions, each made once: the ensemble stage fits every temperature and
evaluate reads them (fitting none), evaluate picks the model to export, and its reliability
table comes back exactly from JSON."""

import json
from pathlib import Path

import numpy as np
import pytest

from imgclf.core.catalogue import predictions_file, temperatures_file
from imgclf.core.fileio import write_json
from imgclf.data.hdf5io import SplitPredictions, save_predictions
from imgclf.evaluation import calibration, evaluating
from imgclf.evaluation.calibration import Reliability
from imgclf.evaluation.ensembling import build_ensemble
from imgclf.evaluation.evaluating import evaluate_run, export_choice, reliability_table
from support.params import make_params

CLASSES = ["a", "b", "c"]
ROWS = 30


def random_splits(seed: int) -> dict[str, SplitPredictions]:
    rng = np.random.default_rng(seed)
    labels = np.arange(ROWS) % len(CLASSES)
    paths = [f"{index}.png" for index in range(ROWS)]
    splits = {}
    for split in ("val", "test"):
        logits = rng.normal(size=(ROWS, len(CLASSES))) * 3
        logits[np.arange(ROWS), labels] += 2.0
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        splits[split] = SplitPredictions(probabilities.astype(np.float32), labels, paths)
    return splits


@pytest.fixture
def predictions(tmp_path: Path) -> Path:
    folder = tmp_path / "predictions"
    for seed, name in enumerate(["cnn/seed0", "logreg", "finetune"]):
        save_predictions(predictions_file(folder, name), random_splits(seed), CLASSES)
    return folder


def test_evaluate_reads_the_ensembles_temperatures_and_fits_none(
    predictions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = make_params(cnn={"seeds": [0]}, evaluate={"calibrate": "temperature"})
    ensemble = build_ensemble(params, predictions)
    assert sorted(ensemble.temperatures) == ["cnn/seed0", "ensemble", "finetune", "logreg"]
    save_predictions(predictions_file(predictions, "ensemble"), ensemble.splits, CLASSES)
    write_json(temperatures_file(predictions), ensemble.temperatures)

    def no_fit(*_: object, **__: object) -> None:
        raise AssertionError("a temperature was fitted")

    # Every fit goes through calibration's optimiser: with it gone, a fit fails.
    monkeypatch.setattr(calibration, "minimize_scalar", no_fit)
    with pytest.raises(AssertionError, match="fitted"):
        build_ensemble(params, predictions)
    evaluation = evaluate_run(params, predictions)
    for name, temperature in ensemble.temperatures.items():
        assert evaluation.metrics[name]["temperature"] == temperature
    chosen = evaluation.summary["chosen"]
    assert evaluation.reliability["model"] == chosen
    assert evaluation.reliability["temperature"] == ensemble.temperatures[chosen]


def test_the_headline_is_one_short_row_of_what_the_detailed_files_say(
    predictions: Path, tmp_path: Path
) -> None:
    """The one metrics file dvc.yaml declares (the `dvc exp show` row): the chosen model's
    figures and each model's test accuracy, equal to the detailed files'; nothing per class."""
    params = make_params(cnn={"seeds": [0]}, evaluate={"calibrate": "temperature"})
    ensemble = build_ensemble(params, predictions)
    save_predictions(predictions_file(predictions, "ensemble"), ensemble.splits, CLASSES)
    write_json(temperatures_file(predictions), ensemble.temperatures)
    evaluation = evaluate_run(params, predictions)
    evaluation.write(tmp_path / "evaluation", tmp_path / "confusion")

    headline = json.loads((tmp_path / "evaluation/headline.json").read_text(encoding="utf-8"))
    chosen = evaluation.summary["chosen"]
    detailed = json.loads((tmp_path / f"evaluation/models/{chosen}.json").read_text())
    assert headline["chosen"] == chosen
    assert headline["exported"] == evaluation.export_choice["model"]
    for key in ("test.accuracy", "test.accuracy_lo", "test.accuracy_hi", "test.macro_f1"):
        assert headline[key] == detailed[key], key
    assert headline["test.ece_scaled"] == detailed["test.ece_scaled"]  # it has a temperature
    for name in ("cnn/seed0", "ensemble", "finetune", "logreg"):
        assert headline[f"test.accuracy.{name}"] == evaluation.metrics[name]["test.accuracy"]
    assert len(headline) == 2 + 6 + 4  # a column per model, never one per class or split


def test_without_calibration_there_are_no_temperatures(predictions: Path) -> None:
    params = make_params(cnn={"seeds": [0]}, evaluate={"calibrate": "none"})
    assert build_ensemble(params, predictions).temperatures == {}


def test_the_export_is_the_best_single_model_or_the_param() -> None:
    metrics = {
        "ensemble": {"val.accuracy": 0.9, "val.nll": 0.1},
        "logreg": {"val.accuracy": 0.8, "val.nll": 0.3},
        "finetune": {"val.accuracy": 0.8, "val.nll": 0.2},
        "cnn/seed0": {"val.accuracy": 0.7, "val.nll": 0.2},
    }
    chosen = make_params(cnn={"seeds": [0]}, export={"model": "chosen"})
    assert export_choice(chosen, metrics)["model"] == "finetune"  # never the ensemble
    pinned = make_params(export={"model": "logreg"})
    assert export_choice(pinned, metrics) == {"model": "logreg", "chosen_by": "export.model"}


def test_the_export_is_chosen_on_what_it_ships_the_centre_crop() -> None:
    """A 10-crop val score is not what the export (one centre crop) gets: the demo's logreg
    led finetune's 10-crop val accuracy (0.853 to 0.840) but not its centre crop (0.871)."""
    metrics = {
        "logreg": {"val.accuracy": 0.853, "val.nll": 0.4},
        "finetune": {
            "val.accuracy": 0.840,
            "val.nll": 0.4,
            "val_1crop.accuracy": 0.871,
            "val_1crop.nll": 0.38,
        },
        "cnn/seed0": {
            "val.accuracy": 0.7,
            "val.nll": 0.9,
            "val_1crop.accuracy": 0.6,
            "val_1crop.nll": 1,
        },
    }
    params = make_params(cnn={"seeds": [0]}, export={"model": "chosen"})
    choice = export_choice(params, metrics)
    assert choice["model"] == "finetune"
    assert choice["chosen_by"].startswith("centre-crop val accuracy")


def test_the_reliability_table_comes_back_exactly_from_json() -> None:
    test = random_splits(4)["test"]
    table = json.loads(json.dumps(reliability_table("logreg", test, temperature=1.7)))
    for key in ("before", "after"):
        back = Reliability.from_json(table[key])
        assert back.to_json() == table[key]
    assert Reliability.from_json(table["before"]).ece == pytest.approx(
        evaluating.reliability(test.probabilities, test.labels).ece, abs=0
    )
