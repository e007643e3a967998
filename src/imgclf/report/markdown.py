"""Small builders of GitHub-flavoured Markdown for the report: code spans and tables."""

import re
from collections.abc import Sequence


def code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks it holds (paths may have some)."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table whose first column is left-aligned and the others (numbers) right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    # A pipe inside a cell would end the cell early.
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines
