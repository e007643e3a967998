"""Stage features: pooled backbone features of one split's pack (book ch. 3)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.stage import run_stage
from imgclf.data.inputs import PackInfo
from imgclf.models.features import extract_features, feature_extractor
from imgclf.models.predicting import load_keras_model
from imgclf.models.runtime import setup

log = logging.getLogger("imgclf.models.features")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="features (.h5)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(0, params.base.deterministic)  # first: before TensorFlow runs anything
    extractor = feature_extractor(load_keras_model(args.backbone), params.features.pooling)
    attrs = {
        "backbone": params.backbone.arch,
        "weights": params.backbone.weights,
        "pooling": params.features.pooling,
        "interpolation": PackInfo.read(args.pack).interpolation,
    }
    count = extract_features(
        extractor,
        args.pack,
        args.out,
        batch_size=params.features.batch_size,
        jit_compile=params.features.jit_compile,
        attrs=attrs,
    )
    log.info(
        "%d feature vectors of %d dimensions in %s", count, extractor.output_shape[-1], args.out
    )


if __name__ == "__main__":
    run_stage(main)
