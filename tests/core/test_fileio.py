"""Atomic writes: a failed or killed writer leaves nothing under the final name (a file or a
folder), and the temporary of a killed writer is removed by the next write in its folder."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imgclf.core.atomicfiles import remove_dead_temporaries
from imgclf.core.fileio import atomic_output

# Writes half a file under atomic_output, says where, and waits to be killed.
KILLED_WRITER = """
import sys, time
from imgclf.core.fileio import atomic_output
with atomic_output(sys.argv[1]) as temporary:
    temporary.write_bytes(b"half a pack")
    print(temporary, flush=True)
    time.sleep(600)
"""


def killed_mid_write(path: Path) -> Path:
    """Run a writer of `path`, SIGKILL it mid-write, and return the temporary it left."""
    writer, temporary = started_writer(path)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    return temporary


def started_writer(path: Path) -> tuple[subprocess.Popen, Path]:
    """A writer of `path` that has written half of it, and its temporary."""
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    temporary = Path(writer.stdout.readline().strip())
    writer.stdout.close()
    return writer, temporary


def test_a_failed_block_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "pack.h5"
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        temporary.write_bytes(b"partial")
        raise RuntimeError("disk full")
    assert list(target.parent.iterdir()) == []


def test_a_killed_writer_leaves_its_temporary_and_the_next_write_removes_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "pack.h5"
    temporary = killed_mid_write(target)
    assert temporary.name == f".pack.{temporary.name.split('.')[2]}.tmp.h5"
    assert temporary.exists() and not target.exists()
    # A live writer's temporary (this process's) is left alone.
    live = tmp_path / f".other.{os.getpid()}.tmp.h5"
    live.write_bytes(b"being written")
    with atomic_output(tmp_path / "means.json") as fresh:
        fresh.write_text("{}")
    assert sorted(path.name for path in tmp_path.iterdir()) == [live.name, "means.json"]


def test_dead_temporary_folders_and_suffixless_files_go_too(tmp_path: Path) -> None:
    dead = killed_mid_write(tmp_path / "model")
    assert dead.suffix == ".tmp" and dead.exists()
    folder = tmp_path / ".export.999999999.tmp"
    (folder / "variables").mkdir(parents=True)
    (tmp_path / ".keep.tmp.me").write_text("not a temporary name")
    assert remove_dead_temporaries(tmp_path) == sorted([dead.name, folder.name])
    assert [path.name for path in tmp_path.iterdir()] == [".keep.tmp.me"]


def test_a_killed_writer_nobody_reaped_counts_as_dead(tmp_path: Path) -> None:
    # Orphans killed with their parent go to PID 1, which in containers often never reaps
    # them: a zombie's PID still exists, but it writes nothing any more.
    writer, temporary = started_writer(tmp_path / "splits.csv")
    writer.send_signal(signal.SIGKILL)
    try:
        while Path(f"/proc/{writer.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            pass  # not reaped on purpose: wait until the kernel has made it a zombie
        assert remove_dead_temporaries(tmp_path) == [temporary.name]
    finally:
        writer.wait()


def test_a_folder_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "export" / "saved_model"
    with atomic_output(target) as temporary:
        (temporary / "variables").mkdir(parents=True)
        (temporary / "saved_model.pb").write_bytes(b"graph")
        assert not target.exists()
    assert (target / "saved_model.pb").read_bytes() == b"graph"
    assert sorted(path.name for path in target.parent.iterdir()) == ["saved_model"]


def test_a_failed_folder_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "saved_model"
    with pytest.raises(RuntimeError, match="killed"), atomic_output(target) as temporary:
        (temporary / "variables").mkdir(parents=True)
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_an_output_is_on_the_disk_before_its_rename_and_the_rename_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power loss cannot be staged here; the order of the system calls that survive it can
    be watched: every file and folder the block made is synced, then renamed, then the
    folder that holds the new name is synced."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source: Path, target: Path) -> None:
        calls.append(("rename", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "savedmodel"
    with atomic_output(target) as temporary:
        (temporary / "variables").mkdir(parents=True)
        (temporary / "saved_model.pb").write_bytes(b"graph")
        (temporary / "variables" / "data").write_bytes(b"weights")
    assert calls == [
        ("fsync", str(temporary / "variables" / "data")),
        ("fsync", str(temporary / "variables")),
        ("fsync", str(temporary / "saved_model.pb")),
        ("fsync", str(temporary)),
        ("rename", str(target)),
        ("fsync", str(tmp_path)),
    ]
