"""The documentation builds with `mkdocs build --strict` (mkdocs.yml makes a broken link, anchor
or nav entry fail it), the README's links into it resolve, and every figure the README and the
docs name is in the repository or an output that dvc.yaml declares: none the code no longer
produces."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from markdown.extensions.toc import slugify

from support import REPO

DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]

IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
HTML_IMAGE = re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)")
# A repository path into the folders the report and DVC's plots live in, however written:
# `reports/figures/confusion.png`, `plots/training/cnn/seed{N}.csv`, plots/confusion/.
FIGURE_PATH = re.compile(r"(?<![\w./-])((?:reports|plots)/[\w{}$<>.,/*-]*)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def test_the_docs_build_strict(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # (Material's notice about MkDocs 2)
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "index.html").is_file()


def headings(page: Path) -> set[str]:
    """The anchors MkDocs gives a page's headings (the same slugs on GitHub for these)."""
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    titles = re.findall(r"^#{1,6} (.+?)\s*$", text, re.MULTILINE)
    return {slugify(title.replace("`", ""), "-") for title in titles}


def test_the_readme_links_resolve() -> None:
    readme = REPO / "README.md"
    broken = []
    for target in LINK.findall(CODE_BLOCK.sub("", readme.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        page = REPO / path if path else readme
        if not page.exists() or (anchor and anchor not in headings(page)):
            broken.append(target)
    assert not broken, f"README.md links to what is not there: {broken}"


def repository_files() -> set[str]:
    """Committed files and new ones git would add (not ignored ones: DVC's outputs), with
    every folder above them."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = {name for name in listed if (REPO / name).exists()}
    return files | {parent.as_posix() for name in files for parent in Path(name).parents}


def declared_outputs() -> list[tuple[str, bool]]:
    """Every `outs`, `metrics` and `plots` path of dvc.yaml's stages, `${...}` as `*`, each with
    whether DVC caches it (a cached folder's files are not in git to be checked)."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    declared = []
    for stage in pipeline["stages"].values():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            for entry in body.get(key, []):
                path, options = (
                    next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                )
                cached = (options or {}).get("cache", True)
                declared.append((re.sub(r"\$\{[^}]*\}", "*", path).rstrip("/"), cached))
    return declared


def expansions(reference: str) -> list[str]:
    """A path as the docs write it, made concrete: `{a,b}` each way, `{name}` and `<name>`
    as `*` (`plots/training/finetune/{warmup,finetune}.csv`, `plots/confusion/{model}.csv`)."""
    choice = re.search(r"\{([^{}]*,[^{}]*)\}", reference)
    if choice:
        return [
            path
            for option in choice.group(1).split(",")
            for path in expansions(
                reference[: choice.start()] + option + reference[choice.end() :]
            )
        ]
    return [re.sub(r"\{[^{}]*\}|<[^<>]*>", "*", reference).rstrip("/")]


def matches(path: str, pattern: str) -> bool:
    """`*` in either stands for one or more characters (a model name can hold a slash)."""
    regex = ".+".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, path.replace("*", "x")) is not None


def produced(path: str, files: set[str], declared: list[tuple[str, bool]]) -> bool:
    if any(matches(name, path) for name in files):
        return True
    return any(
        matches(path, output) or (cached and matches(path, output + "/*"))
        for output, cached in declared
    )


def figure_references() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for image in IMAGE_LINK.findall(text) + HTML_IMAGE.findall(text):
            if not re.match(r"[a-z]+:", image):
                path = Path(os.path.normpath(page.parent / image))
                found.append((page, os.path.relpath(path, REPO)))
        found += [(page, path.rstrip(".,:;")) for path in FIGURE_PATH.findall(text)]
    return found


def test_every_figure_named_exists_or_is_a_declared_output() -> None:
    files, declared = repository_files(), declared_outputs()
    references = figure_references()
    assert any(path.startswith("reports/") for _, path in references)
    missing = sorted(
        f"{page.relative_to(REPO)}: {reference}"
        for page, reference in references
        if not all(produced(path, files, declared) for path in expansions(reference))
    )
    assert not missing, f"figures nothing produces: {missing}"
