"""Stage predict: class probabilities of a Keras model for the val and test packs."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import save_predictions
from imgclf.data.inputs import PackInfo
from imgclf.models.modelcard import check_classes
from imgclf.models.predicting import load_keras_model, predict_pack
from imgclf.models.runtime import setup

log = logging.getLogger("imgclf.predict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", type=Path, required=True, help="a .keras model")
    parser.add_argument("--val", type=Path, required=True, help="val pack")
    parser.add_argument("--test", type=Path, required=True, help="test pack")
    parser.add_argument("--out", type=Path, required=True, help="predictions (.h5)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(0, params.base.deterministic)  # first: before TensorFlow runs anything
    model = load_keras_model(args.model)
    packs = {"val": args.val, "test": args.test}
    for pack in packs.values():
        check_classes(args.model, PackInfo.read(pack).label_names, pack)
    crops = params.predict.crops
    splits = {
        name: predict_pack(model, pack, batch_size=params.predict.batch_size, crops=crops)
        for name, pack in packs.items()
    }
    if crops == 10:  # the centre crop alone too, so the gain of over-sampling is visible
        splits |= {
            f"{name}_1crop": predict_pack(model, pack, batch_size=params.predict.batch_size)
            for name, pack in packs.items()
        }
    save_predictions(
        args.out,
        splits,
        PackInfo.read(args.val).label_names,
        attrs={"model": str(args.model), "crops": crops},
    )
    for name, split in splits.items():
        accuracy = (split.probabilities.argmax(axis=1) == split.labels).mean()
        log.info("%s %s accuracy %.4f", args.model, name, accuracy)


if __name__ == "__main__":
    run_stage(main)
