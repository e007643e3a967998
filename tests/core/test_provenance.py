"""The provenance record: the CPU as CPUID reports it, the kernel and thread settings and the
library versions, with nothing that changes between runs on one machine."""

import json
import platform
import subprocess
import sys

import pytest

from imgclf.core.provenance import (
    CPU_IDENTITY,
    describe_cpu,
    machine_record,
    same_cpu_model,
    write_provenance,
)

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="reads x86 CPUID")


def test_the_record_names_the_cpu_its_settings_and_libraries() -> None:
    record = machine_record(deterministic=True)
    cpu = record["cpu"]
    assert cpu["vendor"] in ("GenuineIntel", "AuthenticAMD")
    assert cpu["name"] and isinstance(cpu["family"], int)
    assert cpu["isa_level"] in ("x86-64-v2", "x86-64-v3", "x86-64-v4")
    assert cpu["caches"]["l1d"] > 0 and cpu["caches"]["l2"] > cpu["caches"]["l1d"]
    assert record["kernels"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert record["libraries"]["numpy"] and record["libraries"]["scikit-learn"]
    assert record["deterministic"] is True


def test_two_runs_on_one_machine_write_the_same_bytes(tmp_path) -> None:
    """Written by two processes (as two stages would): no clock, speed or process id in it."""
    code = (
        "import imgclf, sys; from imgclf.core.provenance import write_provenance; "
        "write_provenance(sys.argv[1], True)"
    )
    paths = [tmp_path / "first.json", tmp_path / "second.json"]
    for path in paths:
        subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    write_provenance(tmp_path / "here.json", deterministic=True)
    assert (
        json.loads((tmp_path / "here.json").read_text())["cpu"]
        == json.loads(paths[0].read_text())["cpu"]
    )


def test_the_cpu_model_is_vendor_name_family_model_stepping_and_caches() -> None:
    cpu = machine_record(deterministic=True)["cpu"]
    assert same_cpu_model(cpu, {**cpu, "isa_level": "x86-64-v3"})  # what NumPy saw aside
    for key in CPU_IDENTITY:
        assert not same_cpu_model(cpu, {**cpu, key: "other"}), key
    line = describe_cpu(cpu)
    assert cpu["name"] in line and "L2 " in line and cpu["isa_level"] in line
