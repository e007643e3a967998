"""The report's export section: what the export stage wrote for serving, how big each file
is, what it scores on test against the model it copies, and (from bench/export.py's last
run, a committed file) how long one image takes on the CPU that ran the bench."""

from pathlib import Path

from imgclf.core.fileio import read_json
from imgclf.report.markdown import code, table

NAMES = {
    "saved_model": "SavedModel (image bytes in)",
    "float32": "LiteRT float32",
    "int8": "LiteRT int8",
}


def export_section(scores: Path, export_path: Path, latency_path: Path) -> list[str]:
    """A table of the exports (score_export's files in `scores`), or a note when this run
    exported nothing."""
    exports = {path.stem: read_json(path) for path in sorted(scores.glob("*.json"))}
    if not exports or not export_path.is_file():
        return ["## Export for serving", "", "No export in this run."]
    export = read_json(export_path)
    latency = read_json(latency_path) if latency_path.is_file() else {}
    # Shown only for the very files the bench timed (a retrain or another dataset changes them).
    timed = latency.get("md5") == export.get("md5")
    per_image = latency.get("per_image_ms", {}) if timed else {}
    source = export["model"]
    rows = []
    for name in sorted(exports, key=lambda name: list(NAMES).index(name) if name in NAMES else 9):
        values = exports[name]
        milliseconds = per_image.get(name)
        rows.append(
            [
                NAMES.get(name, name),
                f"{export['bytes'][name] / 1e6:.2f} MB",
                f"{values['test.accuracy']:.3f} ({values['test.accuracy_lo']:.3f} to "
                f"{values['test.accuracy_hi']:.3f})",
                f"{values['test.accuracy_delta']:+.3f}",
                f"{values['test.agreement']:.3f}",
                f"{values['test.max_probability_gap']:.2g}",
                f"{milliseconds:.2f} ms" if milliseconds is not None else "not timed",
            ]
        )
    header = [
        "export",
        "size",
        "test accuracy (95 %)",
        f"vs {source}",
        "top-1 agreement",
        "largest probability gap",
        "per image",
    ]
    text = (
        f"The export stage wrote {code(source)} (chosen by {export['chosen_by']}) to "
        "`models/export/`: a SavedModel whose signature takes encoded JPEG/PNG bytes and "
        "prepares them in its graph, and LiteRT files taking packed images. Each is scored on "
        f"the test pack against {code(source)}'s own centre-crop predictions; the SavedModel "
        "receives the packed test images as PNG bytes."
    )
    lines = ["## Export for serving", "", text, "", *table(header, rows)]
    bench = code("python bench/export.py")
    if per_image:
        lines += ["", f"Per image: {latency['how']}, measured by {bench} on {latency['cpu']}."]
    else:
        lines += [
            "",
            f"Per image: {bench} has not timed these files (its results: "
            f"{code(str(latency_path))}).",
        ]
    return lines
