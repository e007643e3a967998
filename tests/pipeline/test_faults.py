"""Faults halfway, each injected at an exact moment (tests/pipeline/faults), never after a
delay, so that every outcome is the same on any machine: a build killed inside every kind of
stage and inside DVC's own writes (dvc.lock, run-cache, rwlock, params.yaml, experiment refs),
then run again, ends with the bytes of an uninterrupted build and leaves no temporary file
behind; damaged files are rebuilt or refused, never consumed."""

import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from imgclf.core.atomicfiles import TEMPORARY_NAME
from support.project import Project

pytestmark = pytest.mark.slow

OUTPUT_FOLDERS = ("data/interim", "data/processed", "data/features", "data/predictions", "models")
OUTPUT_FOLDERS += ("metrics", "plots", "reports", ".dvc")
HANG_GUARD_S = 900  # not a speed claim: only so that a hung build fails the test
# The project's outputs (what a stage renames into place).
AN_OUTPUT = r"^(data|models|metrics|plots|reports)/"


@dataclass(frozen=True)
class Moment:
    """Where a kill lands, as a fault of tests/pipeline/faults, and what the next build does
    with the stage it hit: runs it again, restores it from the run-cache, or has it done."""

    name: str
    fault: dict
    then: str  # "reruns", "restored" or "done"
    in_dvc: bool = False  # a fault of `dvc` once it started the stage, not of the stage

    def at(self, stage: str) -> dict:
        return {**self.fault, ("after_stage" if self.in_dvc else "stage"): stage}


def in_stage(name: str, **fault: object) -> Moment:
    return Moment(name, {"match": AN_OUTPUT, **fault}, "reruns")


def in_dvc(name: str, then: str, **fault: object) -> Moment:
    """A kill of `dvc` alone, once its stage process has ended."""
    return Moment(name, {"kill": "self", **fault}, then, in_dvc=True)


STAGE_STARTS = in_stage("as the stage starts", at="start", kill="self")
DVC_AND_STAGE_AT_START = in_stage("dvc and stage, as the stage starts", at="start", kill="group")
BEFORE_OUTPUT = in_stage("before its first output lands", at="rename", kill="self")
DVC_AND_STAGE_BEFORE_OUTPUT = in_stage(
    "dvc and stage, before the first output lands", at="rename", kill="group"
)
AFTER_OUTPUT = in_stage("once its first output landed", at="rename", after=True, kill="group")
# DVC: the stage's command ends, its rwlock is released, its outputs are hashed and its
# run-cache entry written, its outputs committed to the cache, its dvc.lock entry written,
# then the next stage starts.
RWLOCK_CUT = in_dvc("dvc writing .dvc/tmp/rwlock, cut", "reruns", at="dump", match=r"rwlock$")
RUN_CACHE_CUT = in_dvc("dvc writing its run-cache entry, cut", "reruns", at="dump", match="/runs/")
LOCK_CUT = in_dvc("dvc writing dvc.lock, cut", "restored", at="dump", match=r"(^|/)dvc\.lock$")
BETWEEN_STAGES = in_dvc("dvc, as it starts the next stage", "done", at="popen")

# One stage of each kind, in the order `dvc repro` runs them, and where it is killed: every
# moment at least once, both victims (the stage alone: DVC sees it fail; or `dvc` with it).
KILLS = [
    ("index", STAGE_STARTS),
    ("split", DVC_AND_STAGE_BEFORE_OUTPUT),
    ("pack@train", AFTER_OUTPUT),
    ("means", RWLOCK_CUT),
    ("cnn@0", AFTER_OUTPUT),
    ("backbone", BEFORE_OUTPUT),
    ("features@train", RUN_CACHE_CUT),
    ("logreg", BETWEEN_STAGES),
    ("finetune", DVC_AND_STAGE_BEFORE_OUTPUT),
    ("predict_cnn@0", DVC_AND_STAGE_AT_START),
    ("ensemble", LOCK_CUT),
    ("evaluate", BETWEEN_STAGES),
    ("export", AFTER_OUTPUT),
    ("audit", LOCK_CUT),
    ("report", BEFORE_OUTPUT),
]


def temporaries(root: Path) -> list[str]:
    """The temporary files of `atomicfiles` anywhere in the project's outputs, its root and
    DVC's folder."""
    found = [path.name for path in root.iterdir() if TEMPORARY_NAME.fullmatch(path.name)]
    for folder in OUTPUT_FOLDERS:
        for parent, dirs, files in os.walk(root / folder):
            found += [
                os.path.join(parent, name)
                for name in [*dirs, *files]
                if TEMPORARY_NAME.fullmatch(name)
            ]
    return found


def run_in_session(project: Project, *args: str) -> tuple[int, str]:
    """`dvc *args` in a session of its own (a fault may kill its whole process group);
    returns its exit code and its output."""
    process = project.start(project.dvc_argv(*args), output=True)
    output, _ = process.communicate(timeout=HANG_GUARD_S)
    return process.returncode, output


def what_became_of(stage: str, output: str) -> str:
    if f"Running stage '{stage}'" in output:
        return "reruns"
    if f"Stage '{stage}' is cached - skipping run" in output:
        return "restored"
    return "done"


def fired(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_build_killed_inside_every_stage_ends_with_the_uninterrupted_bytes(
    built_project: Project, tmp_path: Path
) -> None:
    """Each build resumes the last and is killed at its stage's moment; the build after it
    shows what became of that stage."""
    project = Project(tmp_path / "killed")
    for number, (stage, moment) in enumerate(KILLS):
        log = tmp_path / f"fault{number}.jsonl"
        code, output = run_in_session(project.with_fault(log, **moment.at(stage)), "repro")
        assert code != 0 and len(fired(log)) == 1, f"{stage}: not killed {moment.name}\n{output}"
        print(f"{stage}: killed {moment.name} ({fired(log)[0]['target']})")
        if number > 0:
            killed, before = KILLS[number - 1]
            assert what_became_of(killed, output) == before.then, (killed, before.name)

    # DVC's lock of a killed `dvc` does not stop the rerun.
    final = project.dvc("repro").stdout
    assert what_became_of(stage, final) == moment.then
    assert project.digests() == built_project.digests()
    assert temporaries(project.root) == []
    assert "up to date" in project.dvc("status").stdout


# DVC's files that it writes in place, cut by a kill of `dvc` as it finishes the `means`
# stage: what the next `dvc repro` does with the guard (imgclf/dvcwrites.py), and what DVC says
# without it.
CUT_WRITES = {
    "dvc.lock": (LOCK_CUT, r"'\./dvc\.lock' validation failed"),
    ".dvc/tmp/rwlock": (RWLOCK_CUT, r"Unable to read RWLock-file '\.dvc/tmp/rwlock'"),
    # DVC writes run-cache entries under a temporary name itself, and drops a cut one.
    "run-cache entry": (RUN_CACHE_CUT, None),
}


def rerun_means(project: Project) -> None:
    """A change that makes `means`, and nothing after it, run again (its output is the same)."""
    with open(project.root / "stages/means.py", "a", encoding="utf-8") as script:
        script.write("# changed\n")


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "unguarded"])
@pytest.mark.parametrize("written", CUT_WRITES)
def test_a_cut_dvc_write_never_stops_the_next_build(
    built_project: Project, tmp_path: Path, written: str, guarded: bool
) -> None:
    moment, unguarded_error = CUT_WRITES[written]
    project = Project(tmp_path / "cut", template=built_project)
    rerun_means(project)
    log = tmp_path / "fault.jsonl"
    faulty = project.with_fault(log, **moment.at("means"), unguard=not guarded)
    code, output = run_in_session(faulty, "repro")
    assert code == -signal.SIGKILL and len(fired(log)) == 1, output
    assert "Running stage 'means'" in output

    rerun = project.dvc("repro", check=False)
    if not guarded and unguarded_error:
        assert rerun.returncode != 0
        assert re.search(unguarded_error, rerun.stderr), rerun.stderr
        return
    assert rerun.returncode == 0, rerun.stderr
    assert what_became_of("means", rerun.stdout) == moment.then
    assert re.findall(r"Running stage '([^']+)'", rerun.stdout) in ([], ["means"])
    assert project.digests() == built_project.digests()
    assert "up to date" in project.dvc("status").stdout
    assert temporaries(project.root) == []


def test_dvc_exp_run_killed_writing_params_yaml_leaves_it_whole(
    built_project: Project, tmp_path: Path
) -> None:
    """`dvc exp run -S` writes the new value into params.yaml in place: cut there, the file
    stays as it was and the experiment runs when asked again (without the guard: the file is
    cut off, and no stage can read it)."""
    project = Project(tmp_path / "params", template=built_project)
    before = (project.root / "params.yaml").read_bytes()
    change = ("exp", "run", "-S", "audit.near_threshold=0.14")
    for guarded in (True, False):
        log = tmp_path / f"fault-{guarded}.jsonl"
        faulty = project.with_fault(
            log, at="dump", match=r"(^|/)params\.yaml$", kill="self", unguard=not guarded
        )
        code, output = run_in_session(faulty, *change)
        assert code == -signal.SIGKILL and len(fired(log)) == 1, output
        after = (project.root / "params.yaml").read_bytes()
        if guarded:
            assert after == before
            # The dead writer's temporary, until the next write in that folder.
            assert temporaries(project.root) == [f".params.{fired(log)[0]['pid']}.tmp.yaml"]
            project.dvc(*change)
            assert "near_threshold: 0.14" in (project.root / "params.yaml").read_text()
            assert temporaries(project.root) == []
            project.command("git", "checkout", "--", "params.yaml", "dvc.lock")
        else:
            assert len(after) < len(before)
            failed = project.dvc("repro", check=False)
            assert failed.returncode != 0, failed.stdout
            print(failed.stderr)


def test_dvc_exp_run_killed_writing_a_git_ref_names_the_lock_to_remove(
    built_project: Project, tmp_path: Path
) -> None:
    """dulwich writes experiment refs whole, through `<ref>.lock`; a kill leaves that lock,
    and dulwich refuses the ref until it is gone: the error names it, and the rerun after its
    removal completes the experiment."""
    project = Project(tmp_path / "refs", template=built_project)
    change = ("exp", "run", "-S", "audit.near_threshold=0.14")
    log = tmp_path / "fault.jsonl"
    faulty = project.with_fault(log, at="rename", match=r"/refs/exps/", kill="group")
    code, output = run_in_session(faulty, *change)
    assert code == -signal.SIGKILL and len(fired(log)) == 1, output
    lock = os.path.relpath(fired(log)[0]["target"], project.root) + ".lock"
    assert (project.root / lock).exists()

    refused = project.dvc(*change, check=False)
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR: unexpected error - {lock}: a git lock file, left by a git or dvc command "
        f"killed while it wrote {Path(lock).stem}; if no git or dvc command is running in "
        f"this repository, remove it (`rm {lock}`) and run the command again"
    ]
    (project.root / lock).unlink()
    project.dvc(*change)
    assert "near_threshold: 0.14" in (project.root / "params.yaml").read_text()
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
    """The first build's `cnn@0` waits, at its start, for the test's word: the second build
    meets it running, whatever the machine's speed."""
    project = Project(tmp_path / "busy", template=built_project)
    word = tmp_path / "go-on"
    paused = project.with_fault(at="start", stage="cnn@0", pause=str(word))
    first = paused.start(paused.dvc_argv("repro", "-f", "-s", "cnn@0"), output=True)
    while not Path(f"{word}.paused").exists():
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.01)  # (waiting for the stage to say it is there, not a timing)
    second = project.dvc("repro", check=False)
    word.touch()
    output, _ = first.communicate(timeout=HANG_GUARD_S)
    assert first.returncode == 0, output
    assert second.returncode != 0
    # DVC's own words: the repository lock, or the lock on what the first build is using.
    assert re.search(
        r"Unable to acquire lock\. Most likely another DVC process is running"
        r"|is busy, it is being blocked by:",
        second.stderr,
    ), second.stderr
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
