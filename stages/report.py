"""Stage report: reports/report.md and its figures, from the outputs of the whole run."""

import argparse
import logging
from dataclasses import fields
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
    # Every input is named by dvc.yaml's command, the one owner of the pipeline's paths.
    # (imgclf.report.loading.ReportInputs says what each holds).
    for name in (field.name for field in fields(ReportInputs)):
        parser.add_argument("--" + name.replace("_", "-"), type=Path, required=True)
    parser.add_argument("--mistakes", type=int, default=12, help="images in the mistakes grid")
    args = parser.parse_args()
    if args.mistakes < 1:
        parser.error(f"--mistakes {args.mistakes}: expected at least 1")

    params = load_params(args.params)
    inputs = ReportInputs(
        **{field.name: getattr(args, field.name) for field in fields(ReportInputs)}
    )
    report = build_report(params, inputs, args.out, mistakes=args.mistakes)
    log.info("report written to %s", report)


if __name__ == "__main__":
    run_stage(main)
