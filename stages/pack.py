"""Stage pack: resize one split's images aspect-aware and write them to an HDF5 pack; each file
is checked against the content hash that `index` recorded as it is read."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.fileio import read_csv
from imgclf.core.stage import run_stage
from imgclf.data.packing import pack_split
from imgclf.data.parallel import available_cores
from imgclf.data.splitting import SPLITS

log = logging.getLogger("imgclf.pack")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--source", type=Path, help="the image folder (default: params data.source)"
    )
    parser.add_argument("--splits", type=Path, required=True)
    parser.add_argument("--split", choices=SPLITS, required=True)
    parser.add_argument("--out", type=Path, required=True, help="HDF5 pack")
    args = parser.parse_args()

    params = load_params(args.params)
    splits = read_csv(args.splits, ["path", "label", "split", "width", "height", "md5"])
    count = pack_split(
        splits,
        args.split,
        args.source or Path(params.data.source),
        args.out,
        size=params.base.image_size,
        params=params.pack,
        seed=params.base.seed,
        workers=available_cores(),
    )
    log.info("packed %d %s images into %s", count, args.split, args.out)


if __name__ == "__main__":
    run_stage(main)
