"""DVC writes its own files whole in the project's environment: the start-up hook patches
every process that imports DVC, and a write that fails leaves the old file. (The kills at
the exact moment of DVC's writes are in tests/pipeline/test_faults.py.)"""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from imgclf import dvcwrites
from imgclf.core.atomicfiles import whole_file


def run_python(code: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd
    )
    return result.stdout.strip()


def test_every_process_that_imports_dvc_writes_whole_files() -> None:
    """`make install` put the start-up line in this environment; `pip install` keeps it."""
    startup = Path(sysconfig.get_paths()["purelib"]) / dvcwrites.STARTUP_FILE
    assert startup.read_text() == dvcwrites.STARTUP_LINE
    assert run_python("from imgclf.dvcwrites import guarded; print(guarded())") == "True"


def test_a_process_that_never_imports_dvc_loads_nothing_of_it() -> None:
    code = (
        "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in ('dvc', 'imgclf')))"
    )
    assert run_python(code) == "[]"


def test_dvc_lock_is_replaced_whole_and_a_failed_dump_changes_nothing(tmp_path: Path) -> None:
    code = """
import dvc.utils.serialize as serialize
serialize.dump_yaml("dvc.lock", {"schema": "2.0", "stages": {"a": {"cmd": "true"}}})
def failing(data, stream):
    stream.write("schema: '2.0'\\nstages:\\n")
    raise OSError("No space left on device")
try:
    serialize._yaml._dump_data("dvc.lock", {}, dumper=failing)
except OSError:
    pass
import os; print(sorted(os.listdir()))
"""
    assert run_python(code, cwd=tmp_path) == "['dvc.lock']"
    assert (tmp_path / "dvc.lock").read_text() == "schema: '2.0'\nstages:\n  a:\n    cmd: 'true'\n"


def test_a_killed_block_leaves_the_old_file_and_the_next_write_removes_its_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "rwlock"
    target.write_text("{}")
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\nfrom imgclf.core.atomicfiles import whole_file\n"
            "with whole_file(sys.argv[1]) as stream:\n"
            "    stream.write('{\"write\": '); stream.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)",
            str(target),
        ],
        check=False,
    )
    assert killed.returncode == -9
    assert target.read_text() == "{}"
    [left] = [path.name for path in tmp_path.iterdir() if path != target]
    with whole_file(target) as stream:
        stream.write('{"write": {}}')
    assert [path.name for path in tmp_path.iterdir()] == ["rwlock"], left
    assert target.read_text() == '{"write": {}}'


def test_a_link_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "shared.yaml").write_text("a: 1\n")
    (tmp_path / "params.yaml").symlink_to("shared.yaml")
    with whole_file(tmp_path / "params.yaml") as stream:
        stream.write("a: 2\n")
    assert (tmp_path / "params.yaml").is_symlink()
    assert (tmp_path / "shared.yaml").read_text() == "a: 2\n"


def test_unpatch_gives_back_dvcs_own_writes() -> None:
    code = """
import dvc.config, dvc.rwlock, dvc.utils.serialize, dulwich.file
from imgclf import dvcwrites
for module in (dvc.utils.serialize, dvc.rwlock, dvc.config, dulwich.file):
    dvcwrites.unpatch(module)
print(dvcwrites.guarded(), dulwich.file._GitFile.__init__.__module__)
"""
    assert run_python(code) == "False dulwich.file"


@pytest.mark.parametrize(
    "name", ["dvc.utils.serialize", "dvc.rwlock", "dvc.config", "dulwich.file"]
)
def test_each_patched_module_is_one_that_loads_in_a_dvc_process(name: str) -> None:
    """The names the start-up hook waits for exist in the pinned DVC and dulwich."""
    import imgclf_startup

    assert name in imgclf_startup.PATCHED
    assert run_python(f"import {name}; print('{name}')") == name
