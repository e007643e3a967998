"""The report as one static HTML page, `report.html` beside `report.md`: opens from the file
system with no server, no network and no script (the test images are embedded as PNG data;
the figures are the PNGs in `figures/`).

It shows the answer and the models table with intervals, the chosen model's confusion
matrix whose cells open to list their images, the most confident mistakes, the audit's
proposals with the curation row that accepts or rejects each, and the figures. Every number
taken from a metrics file carries `data-model` and `data-key` attributes, so a test can read
the page back against the files. `changes_page` draws the images whose prediction changed
between two runs (`imgclf compare REV_A REV_B --html PAGE`).
"""

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from imgclf.core.catalogue import predictions_file
from imgclf.core.fileio import atomic_output, read_csv
from imgclf.data.audit import AUDIT_COLUMNS
from imgclf.data.curation import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_LABEL_QUALITY,
    propose,
    read_decisions,
)
from imgclf.evaluation.runcomparison import Change
from imgclf.report.auditreport import PackedImage, find_packed
from imgclf.report.loading import (
    ModelResult,
    ReportInputs,
    confident_mistakes,
    load_test_predictions,
)

CELL_IMAGES = 40  # images listed in one confusion cell (a count says how many more)
THUMBNAIL_PX = 64  # shown size; the packed pixels are scaled without smoothing
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1f2328; }
h1, h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.cell { min-width: 2.5rem; vertical-align: top; }
td.diagonal { background: #dafbe1; }
td.off { background: #ffebe9; }
details summary { cursor: pointer; }
figure.thumb { display: inline-block; margin: .2rem; text-align: center; font-size: 12px;
               max-width: 9rem; vertical-align: top; }
figure.thumb img { width: 64px; height: 64px; image-rendering: pixelated; display: block;
                   margin: 0 auto; }
.pair { display: inline-flex; gap: .2rem; border: 1px solid #d0d7de; padding: .3rem;
        margin: .3rem; vertical-align: top; }
code { background: #f6f8fa; padding: 0 .2em; }
img.figure { max-width: 100%; }
"""


def write_page(path: Path, title: str, body: Iterable[str]) -> Path:
    """An HTML5 page of `body`'s parts, written atomically."""
    page = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head>",
        "<body>",
        *body,
        "</body></html>",
    ]
    with atomic_output(path) as temporary:
        temporary.write_text("\n".join(page) + "\n", encoding="utf-8")
    return path


def html_report(
    inputs: ReportInputs, results: list[ModelResult], figures: Sequence[str], out: Path
) -> Path:
    """Write `out/report.html`; `figures` are the PNG names this run wrote in figures/."""
    body = ["<h1>imgclf report</h1>", "<p>Written by the pipeline's <code>report</code> stage."]
    body += _answer(results)
    body += _models_table(results)
    if results:
        body += _chosen_model(results[0], inputs)
    body += _proposals(inputs)
    body += ["<h2>Figures</h2>"]
    body += [
        f'<p><img class="figure" src="figures/{html.escape(name)}" alt="{html.escape(name)}">'
        for name in figures
    ]
    return write_page(out / "report.html", "imgclf report", body)


def thumbnail(image: np.ndarray, caption: str, title: str = "") -> str:
    """An image as an embedded PNG with a caption under it."""
    encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1]
    data = base64.b64encode(encoded.tobytes()).decode("ascii")
    return (
        f'<figure class="thumb"><img src="data:image/png;base64,{data}" '
        f'alt="{html.escape(title or caption)}" title="{html.escape(title or caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _number(model: str, key: str, value: float) -> str:
    attributes = f'data-model="{html.escape(model)}" data-key="{html.escape(key)}"'
    return f'<span {attributes} data-value="{value!r}">{value:.3f}</span>'


def _answer(results: list[ModelResult]) -> list[str]:
    if not results:
        return ["<h2>Answer</h2>", "<p>No model metrics in this run."]
    chosen = results[0]
    name, metrics = chosen.name, chosen.metrics
    return [
        "<h2>Answer</h2>",
        f"<p>The pipeline's answer is <strong>{html.escape(name)}</strong>, the best model on "
        f"val (accuracy {_number(name, 'val.accuracy', metrics['val.accuracy'])}). On the test "
        f"images it scores <strong>{_number(name, 'test.accuracy', metrics['test.accuracy'])}"
        f"</strong> accuracy, 95 % interval "
        f"{_number(name, 'test.accuracy_lo', metrics['test.accuracy_lo'])} to "
        f"{_number(name, 'test.accuracy_hi', metrics['test.accuracy_hi'])} (Wilson).",
    ]


MODEL_COLUMNS = (
    ("val.accuracy", "val accuracy"),
    ("test.accuracy", "test accuracy"),
    ("test.accuracy_lo", "95 % low"),
    ("test.accuracy_hi", "95 % high"),
    ("test.macro_f1", "test macro-F1"),
    ("test.ece", "test ECE"),
)


def _models_table(results: list[ModelResult]) -> list[str]:
    if not results:
        return []
    header = "".join(f"<th>{html.escape(text)}</th>" for _, text in MODEL_COLUMNS)
    rows = [
        f"<tr><td>{html.escape(result.name)}</td>"
        + "".join(
            f"<td>{_number(result.name, key, result.metrics[key])}</td>"
            for key, _ in MODEL_COLUMNS
            if key in result.metrics
        )
        + "</tr>"
        for result in results
    ]
    return [
        "<h2>Models</h2>",
        "<p>Best on val first; the interval is Wilson's on the test images.",
        f"<table><tr><th>model</th>{header}</tr>",
        *rows,
        "</table>",
    ]


def _chosen_model(chosen: ModelResult, inputs: ReportInputs) -> list[str]:
    path = predictions_file(inputs.predictions, chosen.name)
    if not path.is_file():
        return [f"<p>No predictions of {html.escape(chosen.name)} in this run."]
    test, names = load_test_predictions(path)
    predicted = test.probabilities.argmax(axis=1)
    images = find_packed(inputs.packs, list(test.paths))
    parts = [
        "<h2>Confusion matrix on test</h2>",
        f"<p>{html.escape(chosen.name)} on the {len(test.labels):,} test images: rows are the "
        "true classes, columns the predicted ones; open a cell to see its images.",
        "<table><tr><th>true \\ predicted</th>"
        + "".join(f"<th>{html.escape(name)}</th>" for name in names)
        + "</tr>",
    ]
    for true, true_name in enumerate(names):
        cells = []
        for guess in range(len(names)):
            rows = np.flatnonzero((test.labels == true) & (predicted == guess))
            kind = "diagonal" if guess == true else ("off" if len(rows) else "")
            cells.append(
                f'<td class="cell {kind}" data-true="{html.escape(true_name)}" '
                f'data-predicted="{html.escape(names[guess])}" data-count="{len(rows)}">'
                + _cell_images(rows, test.paths, test.probabilities, guess, images)
                + "</td>"
            )
        parts.append(f"<tr><th>{html.escape(true_name)}</th>{''.join(cells)}</tr>")
    parts.append("</table>")
    mistakes = confident_mistakes(test, names, 12)
    parts += ["<h2>Most confident mistakes</h2>"]
    if not mistakes:
        return [*parts, f"<p>{html.escape(chosen.name)} makes no mistake on test."]
    parts.append("<p>True → predicted (probability), most confident first.<p>")
    parts += [
        thumbnail(images[m.path].image, f"{m.true} → {m.predicted} ({m.probability:.2f})", m.path)
        for m in mistakes
        if m.path in images
    ]
    return parts


def _cell_images(
    rows: np.ndarray,
    paths: list[str],
    probabilities: np.ndarray,
    guess: int,
    images: dict[str, PackedImage],
) -> str:
    if not len(rows):
        return "0"
    shown = [
        thumbnail(images[paths[row]].image, f"{probabilities[row, guess]:.2f}", paths[row])
        for row in rows[:CELL_IMAGES]
        if paths[row] in images
    ]
    more = f"<p>and {len(rows) - CELL_IMAGES} more" if len(rows) > CELL_IMAGES else ""
    return f"<details><summary>{len(rows)}</summary>{''.join(shown)}{more}</details>"


def _proposals(inputs: ReportInputs) -> list[str]:
    """What `imgclf curate` would propose, each with its images and both curation rows."""
    header = ["<h2>Curation proposals</h2>"]
    if not inputs.audit.is_file():
        return [*header, "<p>No audit in this run."]
    audit = read_csv(inputs.audit, AUDIT_COLUMNS)
    found = find_packed(inputs.packs, sorted({*audit["path"], *audit["other"]} - {""}))
    splits = pd.DataFrame(
        [(path, image.label, image.split) for path, image in found.items()],
        columns=["path", "label", "split"],
    )
    decisions = read_decisions(inputs.curation) if inputs.curation.is_file() else []
    decided = {decision.path for decision in decisions}
    rows = propose(audit, splits, decided, DEFAULT_MAX_LABEL_QUALITY, DEFAULT_LIMIT)
    if rows.empty:
        return [*header, "<p>Nothing to propose: the audit's findings are all decided."]
    parts = [
        *header,
        f"<p>What <code>imgclf curate</code> adds to <code>{html.escape(str(inputs.curation))}"
        "</code>: to accept a proposal, add its first row there; to reject it, its second.",
    ]
    for row in rows.itertuples(index=False):
        image = found[row.path]
        shown = [thumbnail(image.image, f"{image.label} ({image.split})", row.path)]
        if row.copy_of in found:
            kept = found[row.copy_of]
            shown.append(thumbnail(kept.image, f"{kept.label} ({kept.split}), kept", row.copy_of))
        accept = f"{row.path},{row.action},{row.label},"
        parts.append(
            f'<div class="pair" data-path="{html.escape(row.path)}">{"".join(shown)}'
            f"<div><p>{html.escape(row.note)}<p>accept: <code>{html.escape(accept)}</code>"
            f"<br>reject: <code>{html.escape(row.path)},keep,,</code></div></div>"
        )
    return parts


def changes_page(path: Path, lines: Sequence[str], changes: Sequence[Change], packs: Path) -> Path:
    """`imgclf compare REV_A REV_B`'s page: its summary `lines`, then each image whose
    prediction changed, with its label and both runs' answers (fixed first); the pictures
    come from the packs in `packs` (this checkout's: the same source images for both runs)."""
    images = find_packed(packs, [change.path for change in changes])
    body = ["<h1>imgclf compare</h1>", *(f"<p>{html.escape(line)}" for line in lines)]
    for change in changes:
        caption = f"{change.label}: {change.before} → {change.after} {change.verdict}".strip()
        if change.path in images:
            body.append(thumbnail(images[change.path].image, caption, change.path))
        else:  # not in this checkout's packs: the path and answers only
            body.append(f"<p><code>{html.escape(change.path)}</code> {html.escape(caption)}")
    return write_page(path, "imgclf compare", body)
