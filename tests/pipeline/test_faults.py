"""Faults halfway: a build killed with SIGKILL inside every stage, then run again, ends with
the bytes of an uninterrupted build and leaves no temporary file behind; damaged files are
rebuilt or refused, never consumed."""

import hashlib
import os
import queue
import random
import re
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from imgclf.fileio import TEMPORARY_NAME
from pipeline_project import Project

pytestmark = pytest.mark.slow

# One stage of each kind, in the order `dvc repro` runs them.
TARGETS = [
    "index",
    "split",
    "pack@train",
    "means",
    "backbone",
    "features@train",
    "logreg",
    "cnn@0",
    "predict_cnn@0",
    "finetune",
    "ensemble",
    "export",
    "evaluate",
    "audit",
    "report",
]
OUTPUT_FOLDERS = ("data/interim", "data/processed", "data/features", "data/predictions", "models")
OUTPUT_FOLDERS += ("metrics", "plots", "reports")
HANG_GUARD_S = 900  # not a speed claim: only so that a hung build fails the test


@dataclass
class Kill:
    stage: str
    moment: str  # "mid-write" (a temporary file existed) or "after N s"
    victim: str  # "dvc and stage" (the process group) or "stage" (dvc survives it)


def temporaries(root: Path) -> list[str]:
    """The temporary files of `atomic_output` anywhere in the project's outputs."""
    found = []
    for folder in OUTPUT_FOLDERS:
        for parent, dirs, files in os.walk(root / folder):
            found += [
                os.path.join(parent, name)
                for name in [*dirs, *files]
                if TEMPORARY_NAME.fullmatch(name)
            ]
    return found


def stage_lines(stream, started: queue.Queue) -> None:
    for line in stream:
        if match := re.search(r"Running stage '([^']+)'", line):
            started.put(match[1])


def repro_and_kill(project: Project, argv: list[str], remaining: list[str], rng) -> Kill | None:
    """Run `dvc repro`; SIGKILL it inside the first stage of `remaining` that it runs, at a
    random moment: when a temporary output appears or after a random delay. Returns the
    kill, or None if the build finished first."""
    build = project.start(project.dvc_argv("repro", *argv), output=True)
    started: queue.Queue = queue.Queue()
    threading.Thread(target=stage_lines, args=(build.stdout, started), daemon=True).start()
    stage, plan, since = None, None, 0.0
    deadline = time.monotonic() + HANG_GUARD_S
    while build.poll() is None:
        assert time.monotonic() < deadline, "the build hung"
        while not started.empty():
            stage = started.get()
            if stage in remaining:
                plan = "mid-write" if rng.random() < 0.5 else round(rng.uniform(0.0, 3.0), 2)
                victim = rng.choice(["dvc and stage", "stage"])
                since = time.monotonic()
        if stage in remaining and plan is not None:
            waited = time.monotonic() - since
            due = temporaries(project.root) if plan == "mid-write" else waited >= plan
            if due:
                kill(build, victim)
                moment = "mid-write" if plan == "mid-write" else f"after {plan} s"
                return Kill(stage, moment, victim)
        time.sleep(0.005)
    build.wait()
    assert build.returncode == 0, f"dvc repro {argv} failed without a kill"
    return None


def kill(build: subprocess.Popen, victim: str) -> None:
    stage = psutil.Process(build.pid).children(recursive=True)
    if victim == "dvc and stage" or not stage:  # (a stage that just ended: kill dvc)
        os.killpg(build.pid, signal.SIGKILL)
    else:  # the stage's processes only: DVC sees its command fail
        for process in stage:
            process.kill()
    build.wait()
    assert build.returncode != 0


def test_a_build_killed_inside_every_stage_ends_with_the_uninterrupted_bytes(
    built_project: Project, tmp_path: Path
) -> None:
    rng = random.Random(20261202)
    project = Project(tmp_path / "killed")
    remaining, kills = list(TARGETS), []
    # Each rerun resumes the build and is killed in the next stage it reaches. A stage
    # that ended before its moment came is forced to run again (`-f -s`) and killed then.
    for _ in range(3 * len(TARGETS)):
        if not remaining:
            break
        killed = repro_and_kill(project, [], remaining, rng)
        if killed is None:
            killed = repro_and_kill(project, ["-f", "-s", remaining[0]], remaining, rng)
        if killed is not None:
            kills.append(killed)
            remaining.remove(killed.stage)
    print(*kills, sep="\n")  # the faults injected, for the reliability table
    assert remaining == [], f"never killed inside {remaining}"
    assert {kill.victim for kill in kills} == {"dvc and stage", "stage"}
    assert "mid-write" in {kill.moment for kill in kills}

    # DVC's lock of a killed `dvc` does not stop the rerun.
    project.repro()
    assert project.digests() == built_project.digests()
    assert temporaries(project.root) == []
    assert "up to date" in project.dvc("status").stdout


def stages_rebuilt(project: Project) -> list[str]:
    """`dvc repro`: the stages that ran or that DVC restored from its run-cache, sorted."""
    output = project.dvc("repro").stdout
    pattern = r"Running stage '([^']+)'|Stage '([^']+)' is cached - skipping run"
    return sorted(ran or restored for ran, restored in re.findall(pattern, output))


def flip_one_byte(path: Path, keep_mtime: bool) -> None:
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    if keep_mtime:  # bit rot: DVC trusts the size and mtime it saw and does not look again
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_damage_is_rebuilt_or_refused_never_consumed(built_project: Project, tmp_path: Path):
    project = Project(tmp_path / "damaged", template=built_project)
    expected = built_project.digests()

    # Damage that changes a file's mtime: DVC sees it, and rebuilds only what was damaged
    # (the same bytes: nothing downstream reruns).
    os.truncate(project.root / "models/logreg.skops", 100)
    flip_one_byte(project.root / "data/features/val.h5", keep_mtime=False)
    status = project.dvc("status").stdout
    assert re.search(r"modified: +models/logreg\.skops", status)
    assert re.search(r"modified: +data/features/val\.h5", status)
    assert stages_rebuilt(project) == ["features@val", "logreg"]
    assert project.digests() == expected

    # Bit rot that DVC cannot see: the stage that reads the file stops with one line that
    # names it and the commands that repair it.
    pack = "data/processed/train.h5"
    flip_one_byte(project.root / pack, keep_mtime=True)
    assert "up to date" in project.dvc("status").stdout
    failed = project.dvc("repro", "-f", "-s", "features@train", check=False)
    assert failed.returncode != 0
    ours = [line for line in failed.stderr.splitlines() if line.startswith("imgclf")]
    assert ours == [
        f"imgclf: error: {pack}: damaged: not the bytes that stage 'pack@train' wrote (size "
        "or MD5 differ from dvc.lock); rebuild it with `dvc repro -f -s pack@train`, or put "
        f"back DVC's copy with `rm {pack} && dvc checkout {pack}`"
    ]
    (project.root / pack).unlink()  # the second repair the line names
    project.dvc("checkout", pack)
    restored = hashlib.sha256((project.root / pack).read_bytes()).hexdigest()
    assert restored == expected[pack]
    assert stages_rebuilt(project) == ["features@train"]  # DVC removed its output to run it
    assert project.digests() == expected

    # A damaged object in DVC's cache. Depending on what DVC remembers of the object, its
    # `checkout` drops it (`status`: not in cache) or puts the damaged copy back; then the
    # stage that reads it refuses it. Repair: delete the object, rebuild.
    pack = "data/processed/val.h5"
    [out] = yaml.safe_load((project.root / "dvc.lock").read_text())["stages"]["pack@val"]["outs"]
    cached = project.root / ".dvc/cache/files/md5" / out["md5"][:2] / out["md5"][2:]
    flip_one_byte(cached, keep_mtime=False)
    (project.root / pack).unlink()
    project.dvc("checkout", pack, check=False)
    if (project.root / pack).exists():
        failed = project.dvc("repro", "-f", "-s", "features@val", check=False)
        assert failed.returncode != 0
        assert f"imgclf: error: {pack}: damaged: not the bytes" in failed.stderr
    else:
        assert re.search(rf"not in cache: +{pack}", project.dvc("status").stdout)
    # (Else DVC would link the rebuilt file back to the damaged object.)
    cached.unlink(missing_ok=True)
    project.dvc("repro", "-f", "-s", "pack@val")
    project.repro()  # what the refusal left unbuilt, if anything
    assert project.digests() == expected
    assert "up to date" in project.dvc("status").stdout


def test_a_second_repro_in_the_same_workspace_stops_and_damages_nothing(
    built_project: Project, tmp_path: Path
) -> None:
    project = Project(tmp_path / "busy", template=built_project)
    first = project.start(project.dvc_argv("repro", "-f", "-s", "cnn@0"), output=True)
    started: queue.Queue = queue.Queue()
    threading.Thread(target=stage_lines, args=(first.stdout, started), daemon=True).start()
    assert started.get(timeout=HANG_GUARD_S) == "cnn@0"
    second = project.dvc("repro", check=False)
    assert first.poll() is None, "the first build ended before the second started"
    assert second.returncode != 0
    # DVC's own words: the repository lock, or the lock on what the first build is using.
    assert re.search(
        r"Unable to acquire lock\. Most likely another DVC process is running"
        r"|is busy, it is being blocked by:",
        second.stderr,
    ), second.stderr
    assert first.wait(timeout=HANG_GUARD_S) == 0
    assert project.digests() == built_project.digests()
    assert "up to date" in project.dvc("status").stdout


def limit_file_size(limit: int) -> None:
    """In the child: writes past `limit` bytes fail with EFBIG, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_stops_the_stage_in_one_line_and_a_rerun_succeeds(
    built_project: Project, tmp_path: Path
) -> None:
    """(Packs are the large files; a features stage would hit the limit as Keras unpacks
    the backbone, before it writes.)"""
    stage, out = "pack@train", "data/processed/train.h5"
    project = Project(tmp_path / "full", template=built_project)
    (project.root / out).unlink()
    full = subprocess.run(
        ["bash", "-c", project.stage_command(stage)],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: limit_file_size(8192),
    )
    assert full.returncode == 1, full.stderr
    ours = [line for line in full.stderr.splitlines() if line.startswith("imgclf")]
    assert ours == [
        f"imgclf: error: {out}: cannot write it: File too large (the disk is full or a "
        "file-size limit was reached); free space and run the stage again"
    ]
    assert not (project.root / out).exists()
    assert temporaries(project.root) == []
    project.repro()  # space freed: DVC puts back or rebuilds the missing output
    assert project.digests() == built_project.digests()
