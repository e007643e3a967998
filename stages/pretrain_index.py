"""Stage pretrain_index: index the backbone's pretraining folder and split off its val set.

The pretraining source goes through the same indexing as the target images (every file
decode-checked and hashed) and a stratified, seeded train/val split; `pack` then packs it
like the target's splits. Only this stage reads the pretraining folder, and it exists only
while `backbone.weights` is `pretrain` (see backbone.pretrain.sources).
"""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (this checkout's library first)
from imgclf.core.config import DataParams, load_params
from imgclf.core.fileio import write_csv
from imgclf.core.stage import run_stage
from imgclf.data.indexing import build_index
from imgclf.data.parallel import available_cores
from imgclf.data.splitting import split_train_val

log = logging.getLogger("imgclf.pretrain_index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--source", type=Path, required=True, help="pretraining image folder")
    parser.add_argument("--splits", type=Path, required=True, help="train/val split (CSV)")
    parser.add_argument("--rejected", type=Path, required=True, help="rejected files (CSV)")
    args = parser.parse_args()

    params = load_params(args.params)
    folder = DataParams(
        source=str(args.source),
        labels="folder",
        pattern="(?P<label>.+)",
        manifest="labels.csv",
        max_rejected=1.0,
        predefined=False,
    )
    index = build_index(folder, workers=available_cores())
    splits = split_train_val(index.manifest, params.backbone.pretrain.val, params.base.seed)
    write_csv(args.rejected, index.rejected)
    write_csv(args.splits, splits)
    log.info(
        "%d pretraining images (%d val), %d files rejected",
        len(splits),
        int((splits["split"] == "val").sum()),
        len(index.rejected),
    )


if __name__ == "__main__":
    run_stage(main)
