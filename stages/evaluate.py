"""Stage evaluate: metrics with intervals and calibration, and confusion rows, for every
predictions file; the model chosen on val, compared with every other on test."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import predictions_file
from imgclf.core.config import load_params
from imgclf.core.errors import UserError
from imgclf.core.fileio import write_csv, write_json
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import load_predictions
from imgclf.evaluation.exportfidelity import EXPORT_SUMMARY, score_export
from imgclf.evaluation.metrics import confusion_rows, model_metrics, per_class_metrics, summarize

log = logging.getLogger("imgclf.evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument(
        "--metrics",
        type=Path,
        required=True,
        help="folder for models/, per_class/ and summary.json",
    )
    parser.add_argument("--confusion", type=Path, required=True, help="test confusion (CSV)")
    args = parser.parse_args()

    params = load_params(args.params)
    results, tests, classes = {}, {}, None
    for name in params.predicted_models():
        path = predictions_file(args.predictions, name)
        splits, label_names = load_predictions(path)
        if classes is not None and label_names != classes:
            raise UserError(
                f"{path}: classes {label_names}, but the other "
                f"models have {classes}: rerun its stages on the same packs (dvc repro)"
            )
        classes, tests[name] = label_names, splits["test"]
        results[name] = model_metrics(
            splits, len(label_names), params.base.seed, params.evaluate.calibrate
        )
        write_json(args.metrics / "models" / f"{name}.json", results[name])
        write_json(
            args.metrics / "per_class" / f"{name}.json", per_class_metrics(splits, label_names)
        )
        write_csv(args.confusion / f"{name}.csv", confusion_rows(splits["test"], label_names))
        log.info(
            "%-14s test accuracy %.4f  rank-5 %s",
            name,
            results[name]["test.accuracy"],
            results[name].get("test.rank5", "n/a"),
        )
    summary = summarize(results, tests, params.ensemble_members(), params.base.seed)
    # The exports are scored like any model, but never chosen: they copy one.
    summary["exports"] = {}
    for path in sorted((args.predictions / "export").glob("*.h5")):
        source, values = score_export(path, args.predictions, classes, params)
        write_json(args.metrics / "models" / "export" / f"{path.stem}.json", values)
        summary["exports"][path.stem] = {
            "source": source,
            **{key: values[key] for key in EXPORT_SUMMARY},
        }
        log.info(
            "export %-12s test accuracy %.4f (%+.4f against %s), top-1 agreement %.4f",
            path.stem,
            values["test.accuracy"],
            values["test.accuracy_delta"],
            source,
            values["test.agreement"],
        )
    write_json(args.metrics / "summary.json", summary)
    log.info(
        "chosen on val: %s, test accuracy %.4f (95%% interval %.4f to %.4f)",
        summary["chosen"],
        summary["test.accuracy"],
        summary["test.accuracy_lo"],
        summary["test.accuracy_hi"],
    )


if __name__ == "__main__":
    run_stage(main)
