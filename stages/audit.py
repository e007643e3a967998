"""Stage audit: duplicates, leakage, likely label errors and outliers over all splits."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.cpu import pin_threads
from imgclf.core.fileio import read_csv, read_json, write_csv, write_json
from imgclf.core.stage import run_stage
from imgclf.data.audit import (
    LEAK_ISSUES,
    audit_rows,
    check_leaks,
    dataset_facts,
    hash_pairs,
    issue_counts,
    leak_rows,
)
from imgclf.data.splitting import SPLITS, group_ids
from imgclf.models.featureaudit import (
    datalab_rows,
    load_labelled_features,
    out_of_fold_probabilities,
)

log = logging.getLogger("imgclf.audit")
ISSUES = ["exact_duplicate", "near_duplicate", *LEAK_ISSUES, "label_error", "outlier"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--manifest", type=Path, required=True, help="index's manifest")
    parser.add_argument("--splits", type=Path, required=True, help="split's CSV")
    parser.add_argument("--features", type=Path, required=True, help="folder of {split}.h5")
    parser.add_argument("--logreg-search", type=Path, required=True, help="logreg's chosen C")
    parser.add_argument("--out", type=Path, required=True, help="issues (CSV)")
    parser.add_argument("--summary", type=Path, required=True, help="counts (JSON metrics)")
    args = parser.parse_args()

    params = load_params(args.params)
    if params.base.deterministic:
        pin_threads()  # the same sums on any core count
    splits = read_csv(args.splits, ["path", "label", "split", "width", "height"])
    manifest = read_csv(args.manifest, ["path", "pixel_hash", "phash"])
    manifest = manifest[manifest["path"].isin(splits["path"])]  # the curated images only
    pairs = hash_pairs(manifest, params.audit.near_distance)
    data = load_labelled_features([args.features / f"{split}.h5" for split in SPLITS])
    probabilities = out_of_fold_probabilities(
        data,
        C=read_json(args.logreg_search)["C"],
        folds=params.logreg.folds,
        max_iter=params.logreg.max_iter,
        seed=params.base.seed,
        groups=group_ids(splits, data.paths, args.splits),
    )
    model_rows, datalab_counts = datalab_rows(
        data, probabilities, params.audit.near_threshold, params.base.seed
    )
    duplicates = [pairs, model_rows[model_rows["issue"] == "near_duplicate"]]
    rows = audit_rows([pairs, model_rows, leak_rows(audit_rows(duplicates), splits)])
    write_csv(args.out, rows)
    counts = issue_counts(rows, ISSUES)
    write_json(args.summary, {**counts, **datalab_counts, **dataset_facts(splits)})
    log.info("audit: %s", ", ".join(f"{issue} {count}" for issue, count in counts.items()))
    check_leaks(counts, args.out, params.audit.on_leak)


if __name__ == "__main__":
    run_stage(main)
