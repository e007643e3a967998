"""The report's provenance section: which machine made each trained artifact (the records
the training stages write in metrics/provenance/), since trained bytes repeat only on the
same CPU model."""

from pathlib import Path
from typing import Any

from imgclf.core.catalogue import provenance_file
from imgclf.core.fileio import read_json
from imgclf.core.provenance import describe_cpu
from imgclf.report.markdown import code, table


def provenance_section(provenance: Path, artifacts: list[str]) -> list[str]:
    """A row per artifact with a record: its CPU, kernel cap, threads and libraries."""
    records = {
        name: read_json(path)
        for name in artifacts
        if (path := provenance_file(provenance, name)).is_file()
    }
    heading = ["## Where each artifact was made", ""]
    if not records:
        return [*heading, "No provenance records in this run."]
    rows = [
        [code(name), describe_cpu(record["cpu"]), *_settings(record)]
        for name, record in records.items()
    ]
    header = [
        "artifact",
        "CPU (as CPUID reports it)",
        "kernels",
        "threads",
        "TensorFlow / Keras / NumPy",
    ]
    cpus = {describe_cpu(record["cpu"]) for record in records.values()}
    note = (
        "Every artifact was made on one CPU model."
        if len(cpus) == 1
        else f"The artifacts were made on {len(cpus)} CPU models (restored from a DVC cache or "
        "remote filled elsewhere): retrained here they would differ in their last bits."
    )
    return [
        *heading,
        f"From {code(str(provenance))}. Trained models repeat byte for byte on the same CPU "
        "model whatever its core count, not on another (docs/reproducibility.md). " + note,
        "",
        *table(header, rows),
    ]


def _settings(record: dict[str, Any]) -> list[str]:
    kernels = record.get("kernels", {})
    threads = record.get("threads", {})
    libraries = record.get("libraries", {})
    used = [f"OpenBLAS {kernels.get('OPENBLAS_CORETYPE') or 'own choice'}"]
    if threads.get("tensorflow_intra_op"):  # the stage ran TensorFlow
        used.insert(0, f"oneDNN ≤ {kernels.get('ONEDNN_MAX_CPU_ISA') or 'newest'}")
    if not record.get("deterministic"):
        used.append("not deterministic")
    pools = ", ".join(f"{name} {count}" for name, count in threads.items() if count)
    versions = " / ".join(str(libraries.get(name)) for name in ("tensorflow", "keras", "numpy"))
    return [", ".join(used), pools, versions]
