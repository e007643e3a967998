"""Stage report: reports/report.md and its figures, from the outputs of the whole run."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.stage import run_stage
from imgclf.report.loading import ReportInputs
from imgclf.report.reporting import build_report

log = logging.getLogger("imgclf.report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    # The defaults are the pipeline's own paths (dvc.yaml).
    paths = {
        "index": "metrics/index.json",
        "split": "metrics/split.json",
        "rejected": "data/interim/rejected.csv",
        "metrics": "metrics/evaluation/models",
        "summary": "metrics/evaluation/summary.json",
        "predictions": "data/predictions",
        "test_pack": "data/processed/test.h5",
        "training": "plots/training",
        "backbone": "models/backbone.keras",
        "logreg_search": "metrics/logreg_search.json",
        "reliability": "metrics/evaluation/reliability.json",
        "export": "metrics/export.json",
        "exports": "metrics/exports",
        "latency": "bench/results/export.json",
        "audit": "data/interim/audit.csv",
        "audit_summary": "metrics/audit.json",
        "packs": "data/processed",
        "provenance": "metrics/provenance",
    }
    for name, default in paths.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=Path, default=Path(default), help=f"default {default}")
    parser.add_argument("--mistakes", type=int, default=12, help="images in the mistakes grid")
    args = parser.parse_args()
    if args.mistakes < 1:
        parser.error(f"--mistakes {args.mistakes}: expected at least 1")

    params = load_params(args.params)
    inputs = ReportInputs(**{name: getattr(args, name) for name in paths})
    report = build_report(params, inputs, args.out, mistakes=args.mistakes)
    log.info("report written to %s", report)


if __name__ == "__main__":
    run_stage(main)
