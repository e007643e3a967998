"""Stage means: per-channel (R, G, B) pixel means of the train pack, for mean subtraction."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.stage import run_stage
from imgclf.data.means import channel_means, save_means

log = logging.getLogger("imgclf.data.means")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack", type=Path, required=True, help="the train pack")
    parser.add_argument("--out", type=Path, required=True, help="means JSON")
    args = parser.parse_args()

    means = channel_means(args.pack)
    save_means(args.out, means)
    log.info("channel means %s", ", ".join(f"{key} {value:.2f}" for key, value in means.items()))


if __name__ == "__main__":
    run_stage(main)
