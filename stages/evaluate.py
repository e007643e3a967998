"""Stage evaluate: metrics with intervals and calibration, and confusion rows, for every
predictions file; the model chosen on val, compared with every other on test; the model to
export."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.stage import run_stage
from imgclf.evaluation.evaluating import evaluate_run

log = logging.getLogger("imgclf.evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/evaluation folder")
    parser.add_argument("--confusion", type=Path, required=True, help="test confusion (CSV)")
    args = parser.parse_args()

    evaluation = evaluate_run(load_params(args.params), args.predictions)
    evaluation.write(args.metrics, args.confusion)
    for name, values in evaluation.metrics.items():
        rank5 = values.get("test.rank5", "n/a")
        log.info("%-14s test accuracy %.4f  rank-5 %s", name, values["test.accuracy"], rank5)
    summary = evaluation.summary
    log.info(
        "chosen on val: %s, test accuracy %.4f (95%% interval %.4f to %.4f); exported: %s",
        summary["chosen"],
        summary["test.accuracy"],
        summary["test.accuracy_lo"],
        summary["test.accuracy_hi"],
        evaluation.export_choice["model"],
    )


if __name__ == "__main__":
    run_stage(main)
