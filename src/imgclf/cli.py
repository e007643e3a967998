"""The `imgclf` command: what a user does outside `dvc repro`, run from the project's folder.

    imgclf classify [options] PATH_OR_FOLDER ...   label new images (`imgclf classify --help`)
    imgclf compare                                 this build against the committed results
    imgclf compare REV_A REV_B [--model M] [--html PAGE]  the test images two runs answer
                                                   differently (PAGE: drawn, in a browser)
    imgclf experiments [DVC EXP SHOW OPTIONS]      the experiments table, one screen wide
    imgclf curate [--max-label-quality Q]          the audit's proposals into data/curation.csv
    imgclf doctor                                  is this machine set up as imgclf expects?

The pipeline itself is DVC's: `dvc repro` builds it, `dvc exp run -S key=value` tries a
change, `dvc metrics diff` and `imgclf compare` say what it did.
"""

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from imgclf.core.errors import UserError
from imgclf.core.stage import run_stage
from imgclf.data.curation import CURATION_FILE, DEFAULT_LIMIT, DEFAULT_MAX_LABEL_QUALITY

EPILOG = """examples:
  imgclf classify photos/                       the chosen model's top 5 classes per image
  imgclf compare                                after `make run`: same bytes as committed?
  imgclf compare HEAD~1 workspace               what the last change did to the predictions
  imgclf compare main my-experiment --model logreg
  imgclf experiments -n 3 --csv                 the last 3 commits' experiments, as CSV
  imgclf curate --limit 10                      propose, review (delete a #), dvc repro
  imgclf doctor
"""
MIN_FREE_BYTES = 2 * 1024**3  # a demo build needs about 1 GiB of outputs and cache
# `dvc exp show` with the headline metrics (metrics/evaluation/headline.json: `chosen`,
# `exported`, `test.*`; prefixed by the file where an older commit's metrics share a key)
# always, the params only where the rows differ, and neither the stage-dependency hashes nor
# the provenance records: their column names are paths, and no param has a / (the headline's
# `test.accuracy.cnn/seed0` is kept before the drop).
EXPERIMENTS_TABLE = (
    "--only-changed",
    "--keep",
    r"^(Experiment|Created|chosen|exported|test\..+|metrics/evaluation/headline\.json:.+)$",
    "--drop",
    ".*/",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclf",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "classify",
        add_help=False,  # its own options and --help, as `python -m imgclf.classify`
        help="classify image files with the chosen model or any model the pipeline made",
    )
    compare = commands.add_parser(
        "compare",
        help="this build against the committed results, or two runs' test predictions",
        description="Without revisions: which CPU made the committed results and this build, "
        "and how each model's headline metrics moved. With two: the test images whose "
        "prediction changed between them, and McNemar's paired test of the accuracy gap.",
    )
    compare.add_argument(
        "revisions",
        nargs="*",
        metavar="REV",
        help="two of: a commit, branch, tag, experiment name, or `workspace`",
    )
    compare.add_argument("--model", help="compare this model (default: each run's chosen one)")
    compare.add_argument("--shown", type=int, default=20, help="changed images listed")
    compare.add_argument(
        "--html", type=Path, metavar="PAGE", help="also draw every changed image into PAGE"
    )
    commands.add_parser(
        "experiments",
        add_help=False,  # every other option is `dvc exp show`'s
        help="`dvc exp show` narrowed to the headline metrics and the params that differ",
    )
    curate = commands.add_parser(
        "curate",
        help="add the audit's proposals to the curation file, as rows to accept or reject",
        description="Reads the audit (data/interim/audit.csv) and appends to the curation file, "
        "as commented rows, one exclude per extra exact copy (the test copy is the one kept) "
        "and one relabel per likely label error, most certain first. Accept a row by deleting "
        "its leading #, reject it by changing its action to keep; then `dvc repro`, and "
        "`imgclf compare HEAD workspace` for what it changed. Images already in the file "
        "are not proposed again.",
    )
    curate.add_argument("--file", type=Path, default=CURATION_FILE, help="the curation file")
    curate.add_argument("--audit", type=Path, default=Path("data/interim/audit.csv"))
    curate.add_argument("--splits", type=Path, default=Path("data/interim/splits.csv"))
    curate.add_argument(
        "--max-label-quality",
        type=float,
        default=DEFAULT_MAX_LABEL_QUALITY,
        metavar="Q",
        help="propose relabels where the audit's label quality is at most Q (%(default)s)",
    )
    curate.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="relabels proposed at most (%(default)s)"
    )
    commands.add_parser(
        "doctor",
        help="check the environment, DVC cache, disk, CPU and deterministic setting, GPUs",
        description="Each check prints ok, note or PROBLEM with what to do; exit 1 on a problem.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = build_parser().parse_known_args(argv)
    if args.command == "classify":
        from imgclf.serving.command import main as classify

        classify(argv[argv.index("classify") + 1 :], prog="imgclf classify")
    elif args.command == "experiments":
        sys.exit(_experiments(argv[argv.index("experiments") + 1 :]))
    elif rest:
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    elif args.command == "compare":
        run_stage(lambda: _compare(args.revisions, args.model, args.shown, args.html))
    elif args.command == "curate":
        run_stage(lambda: print(_curate(args)))
    else:
        run_stage(_doctor)


def _compare(revisions: list[str], model: str | None, shown: int, page: Path | None) -> None:
    root = Path.cwd()
    if not revisions:
        if model is not None or page is not None:
            raise UserError("--model and --html need two revisions (imgclf compare REV_A REV_B)")
        from imgclf.compare import compare_with_committed

        print("\n".join(compare_with_committed(root)))
        return
    if len(revisions) != 2:
        raise UserError(f"expected two revisions, got {len(revisions)}: {' '.join(revisions)}")
    from imgclf.evaluation.runcomparison import compare_runs, read_run

    runs = [read_run(root, revision, model) for revision in revisions]
    comparison = compare_runs(*runs)
    lines = comparison.lines(shown)
    print("\n".join(lines))
    if page is not None:
        from imgclf.report.htmlpage import changes_page

        packs = root / "data/processed"
        print(f"wrote {changes_page(page, lines[:3], comparison.changes, packs)}")


def _curate(args: argparse.Namespace) -> str:
    from imgclf.core.fileio import read_csv
    from imgclf.data.curation import add_proposals, propose, read_decisions

    audit = read_csv(args.audit, ["path", "issue", "score", "other", "suggested"])
    splits = read_csv(args.splits, ["path", "label", "split"])
    seen = read_decisions(args.file, proposals=True) if args.file.exists() else []
    rows = propose(audit, splits, {d.path for d in seen}, args.max_label_quality, args.limit)
    if rows.empty:
        return f"{args.file}: nothing new to propose (the audit's findings are all decided)"
    add_proposals(args.file, rows)
    counts = rows["action"].value_counts()
    looks = audit["issue"].isin(["near_duplicate", "outlier"]).sum()
    return (
        f"{args.file}: {len(rows)} proposals added as commented rows "
        f"({counts.get('exclude', 0)} exclude, {counts.get('relabel', 0)} relabel); "
        "delete a row's leading # to accept it (to reject it, delete the # and set its "
        f"action to keep), then `dvc repro`. {looks} near duplicates and outliers need a "
        "look: reports/report.html"
    )


def _experiments(options: list[str]) -> int:
    """`dvc exp show` with EXPERIMENTS_TABLE's columns, then `options` (-A, -n 3, --csv, ...)."""
    from dvc.cli import main as dvc

    if "-h" in options or "--help" in options:
        print(f"imgclf experiments = dvc exp show {' '.join(EXPERIMENTS_TABLE)} [OPTIONS]\n")
    return dvc(["exp", "show", *EXPERIMENTS_TABLE, *options])


def _doctor() -> None:
    checks = doctor_checks(Path.cwd())
    for status, text in checks:
        print(f"{status:<8}{text}")
    if any(status == "PROBLEM" for status, _ in checks):
        sys.exit(1)


def doctor_checks(root: Path) -> list[tuple[str, str]]:
    """(ok | note | PROBLEM, what was found and what to do) for each check."""
    return [
        _environment_check(),
        *_dvc_checks(root),
        _cpu_check(root),
        _tensorflow_build_check(),
        _gpu_check(),
    ]


def _environment_check() -> tuple[str, str]:
    environment = Path(sys.prefix)
    found = shutil.which("dvc")
    if found and Path(found).parent == environment / "bin":
        return "ok", f"environment: {environment} is first on PATH (dvc: {found})"
    return (
        "PROBLEM",
        f"environment: `dvc` on PATH is {found or 'missing'}, not {environment / 'bin'}'s: "
        f"stages would run another Python; run `source {environment}/bin/activate`",
    )


def _dvc_checks(root: Path) -> list[tuple[str, str]]:
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            cache = Path(repo.cache.local_cache_dir)
            links = repo.config["cache"].get("type") or ["reflink", "copy"]  # DVC's default
    except NotDvcRepoError:
        return [("PROBLEM", f"DVC: {root} is not a DVC project; run imgclf from its folder")]
    links = [links] if isinstance(links, str) else list(links)
    cache.mkdir(parents=True, exist_ok=True)
    linked = any(link in ("reflink", "hardlink", "symlink") for link in links)
    checks = [
        (
            "ok" if linked else "note",
            f"DVC cache: {cache}, checked out by {', '.join(links)} (`dvc config cache.type`)"
            + ("" if linked else "; every output is stored twice"),
        )
    ]
    for place in sorted({root.resolve(), cache.resolve()}):
        free = shutil.disk_usage(place).free
        checks.append(
            (
                "ok" if free >= MIN_FREE_BYTES else "PROBLEM",
                f"disk: {free / 1024**3:.1f} GiB free at {place}"
                + (
                    ""
                    if free >= MIN_FREE_BYTES
                    else "; free some space (`dvc gc` removes cache entries no commit uses)"
                ),
            )
        )
    return checks


def _cpu_check(root: Path) -> tuple[str, str]:
    from imgclf.core.config import load_params
    from imgclf.core.cpu import check_pins, is_x86
    from imgclf.core.provenance import cpu_record, describe_cpu

    cpu = describe_cpu(cpu_record())
    params = root / "params.yaml"
    if not params.is_file():
        return "note", f"CPU: {cpu}; no params.yaml here, so no deterministic setting to check"
    if not load_params(params).base.deterministic:
        return "note", f"CPU: {cpu}; base.deterministic is false: fastest kernels, bytes vary"
    try:
        check_pins()
    except UserError as error:
        return "PROBLEM", f"CPU: {cpu}; {error}"
    if not is_x86():
        return "ok", f"CPU: {cpu}; threads pinned (no kernel pins exist off x86-64)"
    threads = os.environ.get("OMP_NUM_THREADS", "as many as cores")
    return "ok", f"CPU: {cpu}; deterministic kernels pinned (threads: {threads})"


def _tensorflow_build_check() -> tuple[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    builds = []
    for distribution in ("tensorflow-cpu", "tensorflow"):
        with contextlib.suppress(PackageNotFoundError):
            builds.append(f"{distribution} {version(distribution)}")
    if len(builds) < 2:
        return "ok", f"TensorFlow build: {', '.join(builds) or 'none installed'}"
    # Both write the same `tensorflow` package folder: the last installed wins, and removing
    # either one removes files the other needs.
    return (
        "PROBLEM",
        f"TensorFlow builds: {' and '.join(builds)} are both installed and share one folder; "
        "run `make clean-venv install` (or `make clean-venv install GPU=1`)",
    )


def _gpu_check() -> tuple[str, str]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "note", f"GPU: none seen by TensorFlow {tf.__version__}; training runs on the CPU"
    names = ", ".join(gpu.name for gpu in gpus)
    return "ok", f"GPU: {names} (TensorFlow {tf.__version__})"
