"""Stage index: list, label and decode-check every image under data.source."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.errors import UserError
from imgclf.core.fileio import write_csv, write_json
from imgclf.core.stage import run_stage
from imgclf.data.indexing import build_index
from imgclf.data.parallel import available_cores

log = logging.getLogger("imgclf.index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--manifest", type=Path, required=True, help="accepted images (CSV)")
    parser.add_argument("--rejected", type=Path, required=True, help="rejected files (CSV)")
    parser.add_argument("--summary", type=Path, required=True, help="counts (JSON metrics)")
    args = parser.parse_args()

    params = load_params(args.params).data
    index = build_index(params, workers=available_cores())
    # The rejected list is written even when there are too many: it is what the user needs.
    write_csv(args.rejected, index.rejected)
    if index.rejected_fraction > params.max_rejected:
        first = index.rejected.iloc[0]
        raise UserError(
            f"{len(index.rejected)} of {len(index.rejected) + len(index.manifest)} "
            f"files rejected ({index.rejected_fraction:.1%}), above data.max_rejected"
            f" = {params.max_rejected}; e.g. {first.path}: {first.reason}; all "
            f"listed in {args.rejected}"
        )
    write_csv(args.manifest, index.manifest)
    write_json(args.summary, index.summary())
    log.info(
        "%d images in %d classes, %d files rejected",
        *map(index.summary().get, ("images", "classes", "rejected")),
    )


if __name__ == "__main__":
    run_stage(main)
