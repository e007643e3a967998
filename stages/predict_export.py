"""Stage predict_export: every export's class probabilities on the val and test packs (the
SavedModel on each image's PNG bytes, the LiteRT files on the packed images). Apart from the
conversion, so that a clone that pulled the exports reruns only this."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import predictions_file
from imgclf.core.config import load_params
from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import PackReader, save_predictions
from imgclf.models.runtime import setup
from imgclf.serving.exportedmodels import predict_exports

log = logging.getLogger("imgclf.predict_export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--exports", type=Path, required=True, help="the export stage's folder")
    parser.add_argument("--summary", type=Path, required=True, help="what was exported (JSON)")
    parser.add_argument("--val", type=Path, required=True, help="val pack")
    parser.add_argument("--test", type=Path, required=True, help="test pack")
    parser.add_argument("--out", type=Path, required=True, help="exports' predictions folder")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(0, params.base.deterministic)  # first: before TensorFlow runs anything
    source = read_json(args.summary)["model"]
    with PackReader(args.test) as reader:
        label_names = reader.label_names
    packs = {"val": args.val, "test": args.test}
    for export, splits in predict_exports(args.exports, packs, params.predict.batch_size).items():
        if splits["test"].probabilities.shape[1] != len(label_names):
            raise UserError(
                f"{args.exports}: {export} predicts {splits['test'].probabilities.shape[1]} "
                f"classes, the packs hold {len(label_names)}; rerun the export stage"
            )
        attrs = {"source": source, "export": export}
        save_predictions(predictions_file(args.out, export), splits, label_names, attrs)
        accuracy = (splits["test"].probabilities.argmax(1) == splits["test"].labels).mean()
        log.info("%s of %s: test accuracy %.4f", export, source, accuracy)


if __name__ == "__main__":
    run_stage(main)
