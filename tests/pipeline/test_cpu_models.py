"""Which stages give the same bytes on other CPU models. Each stage's own command (from
dvc.lock) runs under qemu-user's emulation of another x86-64 CPU, whose CPUID (vendor,
model, instruction sets, cache sizes) is what NumPy, OpenBLAS, OpenCV, oneDNN and Eigen read
to choose their kernels and block sizes; its outputs are compared by MD5 with the native
build's. docs/reproducibility.md lists what holds and what does not.

qemu-user is a Debian package (`apt-get install qemu-user`; `.ci/run` installs it): without
it these tests fail in CI (env `CI` set) and are skipped elsewhere, with the reason.
"""

import hashlib
import json
import os
import platform
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from support.project import Project

pytestmark = pytest.mark.slow

QEMU = shutil.which("qemu-x86_64")
# Intel and AMD models with other cache sizes (qemu: Haswell 2 MiB L2, 16 MiB L3; EPYC-Rome
# 512 KiB L2, 16 MiB L3) and instruction sets (TCG emulates up to AVX2: neither has AVX-512).
EMULATED = ("Haswell-v4", "EPYC-Rome-v1")
QEMU_NAMES = {"Haswell-v4": "Intel Core Processor (Haswell", "EPYC-Rome-v1": "AMD EPYC-Rome"}
# The stages whose bytes are the same on every x86-64 CPU model (docs/reproducibility.md).
CPU_INDEPENDENT = (
    "split",
    "pack@train",
    "means",
    "logreg",
    "predict_logreg",
    "ensemble",
    "evaluate",
)
PROVENANCE = "metrics/provenance/"


@pytest.fixture(scope="module")
def qemu() -> str:
    if QEMU is None or platform.machine() != "x86_64":
        reason = "qemu-x86_64 not found (apt-get install qemu-user) or not an x86-64 machine"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return QEMU


def emulated(project: Project, cpu: str, qemu: str) -> Project:
    """`project` seen by stage commands whose `python` runs on an emulated `cpu`."""
    shim = project.root.parent / f"python-on-{cpu}"
    shim.mkdir()
    python = Path(project.env["PATH"].split(os.pathsep)[0]) / "python"
    (shim / "python").write_text(f'#!/bin/sh\nexec {qemu} -cpu {cpu} {python} "$@"\n')
    (shim / "python").chmod(0o755)
    seen = Project(project.root, existing=True)
    seen.env = {**project.env, "PATH": f"{shim}{os.pathsep}{project.env['PATH']}"}
    return seen


def run_stages(project: Project, stages: tuple[str, ...]) -> dict[str, str]:
    """Run each stage's command as DVC would (outputs removed first); their outputs' MD5s."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    for stage in stages:
        for out in lock[stage]["outs"]:
            path = project.root / out["path"]
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        project.command("bash", "-c", lock[stage]["cmd"])
    return output_digests(project, stages)


def output_digests(project: Project, stages: tuple[str, ...]) -> dict[str, str]:
    """The MD5s of the stages' outputs, but for the provenance records: they name the CPU."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    outs = [project.root / out["path"] for stage in stages for out in lock[stage]["outs"]]
    files = [file for out in outs for file in (sorted(out.rglob("*")) if out.is_dir() else [out])]
    return {
        file.relative_to(project.root).as_posix(): hashlib.md5(file.read_bytes()).hexdigest()
        for file in files
        if file.is_file() and not file.relative_to(project.root).as_posix().startswith(PROVENANCE)
    }


def test_the_cpu_independent_stages_give_the_native_bytes_on_emulated_cpus(
    built_project: Project, tmp_path: Path, qemu: str
) -> None:
    """Both emulated CPUs at once (one core each), every stage in DAG order on its copy."""
    native = output_digests(built_project, CPU_INDEPENDENT)
    copies = {
        cpu: emulated(Project(tmp_path / cpu / "project", template=built_project), cpu, qemu)
        for cpu in EMULATED
    }
    with ThreadPoolExecutor(len(copies)) as pool:
        runs = {
            cpu: pool.submit(run_stages, copy, CPU_INDEPENDENT) for cpu, copy in copies.items()
        }
    for cpu, run in runs.items():
        assert run.result() == native, f"{cpu} wrote other bytes"
        # ...and the model's provenance names the CPU it was made on (as CPUID told it).
        made_on = json.loads((copies[cpu].root / PROVENANCE / "logreg.json").read_text())
        assert made_on["cpu"]["name"].startswith(QEMU_NAMES[cpu])


def test_the_comparison_sees_a_kernel_the_set_up_would_have_pinned(
    built_project: Project, tmp_path: Path
) -> None:
    """The set-up broken on purpose: OpenBLAS on its SandyBridge kernels instead of the
    pinned Haswell ones (allowed only with base.deterministic: false) gives logreg other
    bytes, so the MD5s above would catch a CPU that changed a kernel."""
    project = Project(tmp_path / "project", template=built_project)
    project.update_params("base", deterministic=False)
    project.env = {**project.env, "OPENBLAS_CORETYPE": "SandyBridge"}
    stages = ("logreg",)
    assert run_stages(project, stages) != output_digests(built_project, stages)
