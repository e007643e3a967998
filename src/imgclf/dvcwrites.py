"""DVC's own files written whole: `dvc.lock`, `dvc.yaml`, `.dvc` files, `params.yaml` (under
`dvc exp run -S`), run-cache entries, `.dvc/tmp/rwlock` and `.dvc/config`.

DVC 3 writes these in place (it opens them with "w", which truncates, then writes), so a kill,
a power loss or a full disk at that moment leaves a cut-off file that stops every later `dvc`
command. The project's virtual environment loads this module into every process that imports
DVC (`imgclf_startup`, through a `.pth` file that `make install` puts in site-packages); it
swaps those writes for `atomicfiles.whole_file`: temporary, fsync, rename.

`dvc push` and `dvc fetch` keep the list of what to transfer in DVC's data index (an SQLite
file) for the next push or fetch of the same data, and commit it piece by piece (each output,
each directory listing loaded), so a kill while they collect it leaves a partial list that
the next run takes for the whole: it transfers part of the data and says it succeeded. Here
the list is collected afresh in memory each time (one pass over the outputs' entries; DVC
drops the stored list after every transfer anyway).

Git refs (experiments) are written whole by dulwich already, through a `<ref>.lock` file that a
kill can leave behind; dulwich then refuses that ref for good. That lock cannot be told from a
live one, so it is not removed here: the error names it and the command that removes it.
"""

import os
import sys
import sysconfig
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

from imgclf.core.atomicfiles import whole_file

STARTUP_FILE = "imgclf-dvc-writes.pth"
# One line, run by Python's `site` at start-up; `imgclf_startup` imports nothing else.
STARTUP_LINE = "import imgclf_startup; imgclf_startup.watch_dvc_imports()\n"
SERIALIZERS = ("_common", "_json", "_py", "_toml", "_yaml")
ORIGINAL = "_imgclf_original"  # where a patched module keeps DVC's own function


class WholeWrites:
    """A DVC file system whose `open` for writing goes through `whole_file`; everything else
    is the wrapped one's."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def open(self, path: str, mode: str = "r", **kwargs: Any) -> Any:
        if "w" in mode:
            return whole_file(path, mode, encoding=kwargs.get("encoding"))
        return self._fs.open(path, mode, **kwargs)


def _is_local(fs: Any) -> bool:
    return fs is None or getattr(fs, "protocol", None) == "local"


def _dump_whole(path: Any, data: Any, dumper: Any, fs: Any = None, **dumper_args: Any) -> None:
    """DVC's `_dump_data`, writing a local file whole."""
    if not _is_local(fs):  # (a remote or git file system: DVC's own way)
        return getattr(_dump_whole, ORIGINAL)(path, data, dumper, fs=fs, **dumper_args)
    with whole_file(os.fspath(path), "w+", encoding="utf-8") as stream:
        dumper(data, stream, **dumper_args)


def patch(module: ModuleType) -> None:
    """Make the DVC module just imported write whole files; other modules are left alone."""
    if module.__name__ == "dvc.utils.serialize":
        for name in SERIALIZERS:
            serializer = sys.modules.get(f"dvc.utils.serialize.{name}")
            if serializer is not None and hasattr(serializer, "_dump_data"):
                _replace(serializer, "_dump_data", _dump_whole)
    elif module.__name__ == "dvc.rwlock":
        edit_rwlock = module._edit_rwlock

        def edit_whole(lock_dir: str, fs: Any, hardlink: bool) -> AbstractContextManager:
            return edit_rwlock(lock_dir, WholeWrites(fs), hardlink)

        _replace(module, "_edit_rwlock", edit_whole)
    elif module.__name__ == "dvc.config":
        get_fs = module.Config._get_fs

        def get_whole_fs(self: Any, level: str) -> WholeWrites:
            return WholeWrites(get_fs(self, level))

        _replace(module.Config, "_get_fs", get_whole_fs)

    elif module.__name__ == "dvc_data.index.fetch":  # (push and fetch import collect from it)
        collect = module.collect

        def collect_afresh(
            *args: Any, cache_index: Any = None, cache_key: Any = None, **kwargs: Any
        ) -> Any:
            return collect(*args, **kwargs)  # (without cache_index: a view in memory)

        _replace(module, "collect", collect_afresh)
    elif module.__name__ == "dulwich.file":
        open_locked, lock_left = module._GitFile.__init__, _lock_left(module.FileLocked)

        def open_naming_repair(self: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
            try:
                open_locked(self, filename, *args, **kwargs)
            except module.FileLocked as locked:
                raise lock_left(locked.filename, locked.lockfilename) from None

        _replace(module._GitFile, "__init__", open_naming_repair)


def _lock_left(file_locked: type) -> type:
    """dulwich's FileLocked (its callers catch it), saying what to do in one line."""

    class LockLeft(file_locked):
        def __str__(self) -> str:
            lock = os.path.relpath(os.fsdecode(self.lockfilename))
            return (
                f"{lock}: a git lock file, left by a git or dvc command killed while it wrote "
                f"{os.path.basename(os.fsdecode(self.filename))}; if no git or dvc command is "
                f"running in this repository, remove it (`rm {lock}`) and run the command again"
            )

    return LockLeft


def _replace(owner: Any, name: str, whole: Any) -> None:
    original = getattr(owner, name)
    if getattr(original, ORIGINAL, None) is not None:
        return  # patched already
    setattr(whole, ORIGINAL, original)
    setattr(owner, name, whole)


def unpatch(module: ModuleType) -> None:
    """DVC's own in-place writes back (for the tests that show what the patch prevents)."""
    owners = [module]
    if module.__name__ == "dvc.utils.serialize":
        owners = [sys.modules[f"dvc.utils.serialize.{name}"] for name in SERIALIZERS]
    elif module.__name__ == "dvc.config":
        owners = [module.Config]
    elif module.__name__ == "dulwich.file":
        owners = [module._GitFile]
    for owner in owners:
        for name, value in list(vars(owner).items()):
            if (original := getattr(value, ORIGINAL, None)) is not None:
                setattr(owner, name, original)


def guarded() -> bool:
    """Whether DVC, imported in this process, writes its files whole."""
    import dvc.config
    import dvc.rwlock
    import dvc.utils.serialize._yaml as yaml_serializer
    import dvc_data.index.fetch

    patched = (
        yaml_serializer._dump_data,
        dvc.rwlock._edit_rwlock,
        dvc.config.Config._get_fs,
        dvc_data.index.fetch.collect,
    )
    return all(hasattr(function, ORIGINAL) for function in patched)


def install(site_packages: Path | None = None) -> Path:
    """Put the start-up line in this environment's site-packages; returns the file."""
    folder = Path(site_packages or sysconfig.get_paths()["purelib"])
    startup = folder / STARTUP_FILE
    with whole_file(startup) as stream:
        stream.write(STARTUP_LINE)
    return startup


if __name__ == "__main__":  # `python -m imgclf.dvcwrites`: what `make install` runs
    print(f"imgclf: DVC writes its files whole in this environment ({install()})")
