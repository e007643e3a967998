"""The evaluation of a run (stage `evaluate`): every model's metrics with the temperature the
ensemble stage fitted, per-class figures and confusion rows, the model chosen on val with
every other compared to it on test, the model to export, and the chosen model's reliability
table before and after its temperature. Each decision is made here, once; export and the
report read what this writes."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from imgclf.core.catalogue import predictions_file, temperatures_file
from imgclf.core.config import Params
from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json, write_csv, write_json
from imgclf.data.hdf5io import SplitPredictions, load_predictions
from imgclf.evaluation.calibration import apply_temperature, reliability
from imgclf.evaluation.metrics import (
    CHOICE_RULE,
    choose_model,
    confusion_rows,
    model_metrics,
    per_class_metrics,
    summarize,
)

# The chosen model's figures in the headline; test.ece_scaled only where it has a temperature.
HEADLINE_KEYS = (
    "test.accuracy",
    "test.accuracy_lo",
    "test.accuracy_hi",
    "test.macro_f1",
    "test.ece",
    "test.ece_scaled",
)


@dataclass(frozen=True)
class Evaluation:
    """What stage `evaluate` writes (`write`): per model, its metrics, per-class metrics and
    test confusion rows; the summary; the export choice; the reliability of the chosen."""

    metrics: dict[str, dict[str, float]]
    per_class: dict[str, dict[str, float]]
    confusion: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    export_choice: dict[str, str]
    reliability: dict[str, Any]

    @property
    def headline(self) -> dict[str, Any]:
        """The run in one row of `dvc exp show` (the one metrics file dvc.yaml declares):
        the chosen and exported models, the chosen one's test accuracy with its interval,
        macro-F1 and calibration, and every model's test accuracy. The detailed files stay
        diffable with `dvc metrics diff --targets`."""
        chosen = self.metrics[self.summary["chosen"]]
        row: dict[str, Any] = {
            "chosen": self.summary["chosen"],
            "exported": self.export_choice["model"],
        }
        for key in HEADLINE_KEYS:
            if key in chosen:
                row[key] = chosen[key]
        for name, values in self.metrics.items():
            row[f"test.accuracy.{name}"] = values["test.accuracy"]
        return row

    def write(self, folder: Path, confusion: Path) -> None:
        """Into `folder` (metrics/evaluation): headline.json, models/, per_class/,
        summary.json, export_choice.json, reliability.json; confusion rows into `confusion`."""
        write_json(folder / "headline.json", self.headline)
        for name, values in self.metrics.items():
            write_json(folder / "models" / f"{name}.json", values)
            write_json(folder / "per_class" / f"{name}.json", self.per_class[name])
            write_csv(confusion / f"{name}.csv", self.confusion[name])
        write_json(folder / "summary.json", self.summary)
        write_json(folder / "export_choice.json", self.export_choice)
        write_json(folder / "reliability.json", self.reliability)


def evaluate_run(params: Params, predictions: Path) -> Evaluation:
    """Score every model's predictions under `predictions` (data/predictions)."""
    temperatures = read_json(temperatures_file(predictions))
    metrics, per_class, confusion, tests = {}, {}, {}, {}
    classes = None
    for name in params.predicted_models():
        path = predictions_file(predictions, name)
        splits, label_names = load_predictions(path)
        if classes is not None and label_names != classes:
            raise UserError(
                f"{path}: classes {label_names}, but the other "
                f"models have {classes}: rerun its stages on the same packs (dvc repro)"
            )
        classes, tests[name] = label_names, splits["test"]
        metrics[name] = model_metrics(
            splits, len(label_names), params.base.seed, temperatures.get(name)
        )
        per_class[name] = per_class_metrics(splits, label_names)
        confusion[name] = confusion_rows(splits["test"], label_names)
    summary = summarize(metrics, tests, params.ensemble_members())
    chosen = summary["chosen"]
    return Evaluation(
        metrics,
        per_class,
        confusion,
        summary,
        export_choice(params, metrics),
        reliability_table(chosen, tests[chosen], temperatures.get(chosen)),
    )


def export_choice(params: Params, metrics: dict[str, dict[str, float]]) -> dict[str, str]:
    """The single model stage `export` exports: `export.model`, or with `chosen` the best of
    the single models (the ensemble is several) by the choice rule applied to what an export
    ships: the centre crop without a temperature, not a 10-crop average."""
    if params.export.model != "chosen":
        return {"model": params.export.model, "chosen_by": "export.model"}
    shipped = {name: centre_crop_metrics(metrics[name]) for name in params.exportable_models()}
    return {"model": choose_model(shipped), "chosen_by": f"centre-crop {CHOICE_RULE}"}


def centre_crop_metrics(values: dict[str, float]) -> dict[str, float]:
    """A model's metrics as its export would score them: those of its centre-crop
    predictions (`val_1crop.*`, written when `predict.crops` is 10) as `val.*`."""
    centre = {
        key.replace("val_1crop.", "val.", 1): value
        for key, value in values.items()
        if key.startswith("val_1crop.")
    }
    return values | centre


def reliability_table(
    name: str, test: SplitPredictions, temperature: float | None
) -> dict[str, Any]:
    """The report's reliability diagram of `name` on test: before, and after its
    temperature when it has one."""
    table: dict[str, Any] = {
        "model": name,
        "before": reliability(test.probabilities, test.labels).to_json(),
    }
    if temperature is not None:
        scaled = apply_temperature(test.probabilities, temperature)
        table |= {"temperature": temperature, "after": reliability(scaled, test.labels).to_json()}
    return table
