"""The report's export section: sizes, scores against the source, and latency only for the
files the bench timed."""

from pathlib import Path

from imgclf.core.fileio import write_json
from imgclf.report.deployment import export_section

SCORES = {
    "test.accuracy": 0.84,
    "test.accuracy_lo": 0.79,
    "test.accuracy_hi": 0.88,
    "test.accuracy_delta": -0.004444,
    "test.agreement": 0.977778,
    "test.max_probability_gap": 0.0818,
}
EXPORT = {"model": "logreg", "chosen_by": "val accuracy", "bytes": {"int8": 133192}}


def test_the_table_shows_latency_only_for_the_timed_files(tmp_path: Path) -> None:
    write_json(tmp_path / "exports" / "int8.json", SCORES)
    write_json(tmp_path / "export.json", {**EXPORT, "md5": {"int8": "abc"}})
    latency = {"md5": {"int8": "abc"}, "per_image_ms": {"int8": 0.1234}, "cpu": "X", "how": "h"}
    write_json(tmp_path / "bench.json", latency)
    lines = export_section(tmp_path / "exports", tmp_path / "export.json", tmp_path / "bench.json")
    row = next(line for line in lines if line.startswith("| LiteRT int8"))
    assert (
        row
        == "| LiteRT int8 | 0.13 MB | 0.840 (0.790 to 0.880) | -0.004 | 0.978 | 0.082 | 0.12 ms |"
    )
    write_json(tmp_path / "bench.json", {**latency, "md5": {"int8": "retrained"}})
    lines = export_section(tmp_path / "exports", tmp_path / "export.json", tmp_path / "bench.json")
    assert next(line for line in lines if line.startswith("| LiteRT")).endswith("| not timed |")


def test_no_export_is_a_note(tmp_path: Path) -> None:
    lines = export_section(tmp_path / "none", tmp_path / "missing.json", tmp_path / "no.json")
    assert lines == ["## Export for serving", "", "No export in this run."]
