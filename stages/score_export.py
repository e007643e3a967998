"""Stage score_export: each export's val/test predictions scored like any model, and against
the centre-crop predictions of the model it copies (top-1 agreement, accuracy delta)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.errors import UserError
from imgclf.core.fileio import write_json
from imgclf.core.stage import run_stage
from imgclf.evaluation.exportfidelity import int8_loss, score_exports

log = logging.getLogger("imgclf.score_export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--exports", type=Path, required=True, help="exports' predictions")
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for one JSON per export")
    args = parser.parse_args()

    params = load_params(args.params)
    scores = score_exports(args.exports, args.predictions, params.base.seed)
    for name, values in scores.items():
        write_json(args.out / f"{name}.json", values)
        log.info(
            "export %-12s test accuracy %.4f (%+.4f against its source), top-1 agreement %.4f",
            name,
            values["test.accuracy"],
            values["test.accuracy_delta"],
            values["test.agreement"],
        )
    loss, on_loss = int8_loss(scores["int8"], params.export), params.export.on_int8_loss
    if loss and on_loss == "fail":
        raise UserError(loss)
    if loss:
        log.warning(loss)


if __name__ == "__main__":
    run_stage(main)
