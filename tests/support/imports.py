"""What a Python file imports from imgclf, read from its syntax tree (nothing is run):
absolute and relative imports, and the package `__init__.py` files that Python runs on the
way to a module."""

import ast
from pathlib import Path

from support import REPO

SOURCE = REPO / "src"
LIBRARY = SOURCE / "imgclf"


def module_name(path: Path) -> str:
    """The dotted name of a library file (a package's `__init__.py` is the package)."""
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Dotted imgclf names that `path` imports (`from a import b` gives `a` and `a.b`)."""
    package = ""
    if path.is_relative_to(SOURCE):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..models import y
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {name for name in names if name == "imgclf" or name.startswith("imgclf.")}


def files_of(name: str) -> list[Path]:
    """The files Python runs to import `name`: every package `__init__.py` on the way, and
    the module itself; a trailing name inside a module (a function) adds nothing."""
    parts = name.split(".")
    files = []
    for depth in range(1, len(parts) + 1):
        base = SOURCE.joinpath(*parts[:depth])
        if (base / "__init__.py").is_file():
            files.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            files.append(base.with_suffix(".py"))
            break
        else:
            break
    return files


def runs_code(path: Path) -> bool:
    """Whether importing `path` runs anything beyond binding its docstring."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return bool(body[1:] if ast.get_docstring(ast.Module(body, [])) is not None else body)


def imported_files(path: Path) -> set[Path]:
    """Every library file that importing `path` runs, directly or indirectly."""
    found: set[Path] = set()
    pending = [path]
    while pending:
        for name in imported_names(pending.pop()):
            for file in files_of(name):
                if file not in found:
                    found.add(file)
                    pending.append(file)
    return found
