"""Stage split: stratified, seeded train/val/test split of the manifest, then the curation
file's decisions (excluded images leave their split, relabelled ones keep it)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.fileio import read_csv, write_csv, write_json
from imgclf.core.stage import run_stage
from imgclf.data.curation import apply_decisions, check_decisions, decision_counts, read_decisions
from imgclf.data.hashing import count_groups, duplicate_groups
from imgclf.data.splitting import SPLITS, split_manifest, split_mode

log = logging.getLogger("imgclf.split")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--curation", type=Path, required=True, help="decisions (CSV)")
    parser.add_argument("--out", type=Path, required=True, help="splits CSV")
    parser.add_argument("--summary", type=Path, required=True, help="counts (JSON metrics)")
    args = parser.parse_args()

    params = load_params(args.params)
    manifest = read_csv(args.manifest, ["path", "label", "pixel_hash", "phash"])
    groups = None
    if params.split.group_duplicates:
        near = params.split.near_distance
        groups = duplicate_groups(manifest["pixel_hash"], manifest["phash"], near)
    splits = split_manifest(manifest, params.split, seed=params.base.seed, groups=groups)
    decisions = read_decisions(args.curation)
    check_decisions(decisions, manifest, args.curation)
    splits = apply_decisions(splits, decisions, args.curation)
    write_csv(args.out, splits)
    counts = splits["split"].value_counts()
    summary = {name: int(counts.get(name, 0)) for name in SPLITS}
    summary["mode"] = split_mode(manifest)
    summary |= decision_counts(decisions)
    if groups is not None:
        summary["duplicate_groups"] = count_groups(groups)
    write_json(args.summary, summary)
    log.info("split %s", ", ".join(f"{name} {counts.get(name, 0)}" for name in SPLITS))


if __name__ == "__main__":
    run_stage(main)
