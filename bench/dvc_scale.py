"""Benchmark: DVC's own overhead on a large image folder, before and after `index` became the
only stage that depends on it, in one run.

For each folder size (`--sizes`, default 10,000 and 100,000 small files in 10 class
folders), two throw-away git + DVC repositories get the same folder and a pipeline shaped
like imgclf's, whose commands are trivial (they copy a small file), so that the times are
DVC's:

- before: `index`, `pack@{train,val,test}` and `backbone` (its pretraining source) all list
  the image folder as a dependency, as imgclf's dvc.yaml did;
- after: only `index` lists it; the packs depend on the manifest that `index` writes, and
  `backbone` on the pretraining packs (no image folder).

Measured per layout: the first `dvc repro` (hashes every file), a no-op `dvc status`, a no-op
`dvc repro`, and `dvc repro` after one image is edited (index and packs rerun). Each
command's wall time is the best of `--repeat` tries; the table prints after/before ratios.

    .venv/bin/python bench/dvc_scale.py [--sizes 10000 100000] [--repeat 3]
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("bench/out/dvc_scale")
CLASSES = 10
TOUCH = 'python -c "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])"'
STAGES = {
    "before": """stages:
  index:
    cmd: {touch} params.yaml manifest.csv
    deps: [images]
    outs: [manifest.csv]
  pack:
    foreach: [train, val, test]
    do:
      cmd: {touch} manifest.csv ${{item}}.h5
      deps: [images, manifest.csv]
      outs: ["${{item}}.h5"]
  backbone:
    cmd: {touch} params.yaml backbone.keras
    deps: [images]
    outs: [backbone.keras]
""",
    "after": """stages:
  index:
    cmd: {touch} params.yaml manifest.csv
    deps: [images]
    outs: [manifest.csv]
  pack:
    foreach: [train, val, test]
    do:
      cmd: {touch} manifest.csv ${{item}}.h5
      deps: [manifest.csv]
      outs: ["${{item}}.h5"]
  backbone:
    cmd: {touch} params.yaml backbone.keras
    deps: [params.yaml]
    outs: [backbone.keras]
""",
}
STEPS = ("first repro", "no-op status", "no-op repro", "repro after one edit")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="tries of each no-op command")
    return parser.parse_args()


def make_images(folder: Path, count: int) -> None:
    """`count` small distinct files in class folders (DVC's cost is per file, not per byte)."""
    for index in range(count):
        path = folder / f"class{index % CLASSES}" / f"{index:07d}.png"
        if index < CLASSES:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(index.to_bytes(8, "little") * 32)


def run(repo: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - start


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def measure(layout: str, images: Path, count: int, repeat: int) -> dict[str, float]:
    repo = OUT / f"{layout}-{count}"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    run(repo, "init", "-q")
    run(repo, "config", "core.analytics", "false")
    shutil.copytree(images, repo / "images")
    (repo / "params.yaml").write_text("seed: 0\n")
    (repo / "dvc.yaml").write_text(STAGES[layout].format(touch=TOUCH))
    times = {"first repro": run(repo, "repro")}
    times["no-op status"] = min(run(repo, "status") for _ in range(repeat))
    times["no-op repro"] = min(run(repo, "repro") for _ in range(repeat))
    edited = repo / "images" / "class3" / f"{3:07d}.png"
    edits = []
    for attempt in range(repeat):
        edited.write_bytes(b"edited" + attempt.to_bytes(4, "little"))
        edits.append(run(repo, "repro"))
    times["repro after one edit"] = min(edits)
    shutil.rmtree(repo)
    return times


def main() -> None:
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in args.sizes:
        images = OUT / f"images-{count}"
        if not images.exists():
            make_images(images, count)
        results = {layout: measure(layout, images, count, args.repeat) for layout in STAGES}
        for step in STEPS:
            before, after = results["before"][step], results["after"][step]
            rows.append((count, step, before, after))
            print(f"{count:>7} files  {step:22} before {before:7.2f} s  after {after:7.2f} s")
    print("\n| files | command | before (s) | after (s) | after / before |")
    print("|---:|---|---:|---:|---:|")
    for count, step, before, after in rows:
        print(f"| {count:,} | {step} | {before:.2f} | {after:.2f} | {after / before:.2f} |")


if __name__ == "__main__":
    main()
