"""The report's provenance section: a row per trained artifact, and a note when the
artifacts come from more than one CPU model."""

from pathlib import Path

from imgclf.core.catalogue import provenance_file, trained_artifacts
from imgclf.core.fileio import write_json
from imgclf.core.provenance import machine_record
from imgclf.report.machines import provenance_section


def test_each_artifact_gets_its_machine_and_a_mix_is_flagged(tmp_path: Path) -> None:
    record = machine_record(deterministic=True)
    artifacts = trained_artifacts([0])
    for name in artifacts[:-1]:  # no export in this run
        write_json(provenance_file(tmp_path, name), record)
    lines = provenance_section(tmp_path, artifacts)
    rows = [line for line in lines if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["backbone", "cnn/seed0", "logreg", "finetune"]
    assert all(record["cpu"]["name"] in row and "oneDNN ≤ AVX2" in row for row in rows)
    assert any("one CPU model" in line for line in lines)
    other = {**record, "cpu": {**record["cpu"], "model": -1}}
    write_json(provenance_file(tmp_path, "logreg"), other)
    assert any("made on 2 CPU models" in line for line in provenance_section(tmp_path, artifacts))


def test_a_run_without_records_says_so(tmp_path: Path) -> None:
    assert provenance_section(tmp_path, ["backbone"])[-1] == "No provenance records in this run."
