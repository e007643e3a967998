"""Where a trained artifact was made: the CPU as its kernels saw it, the kernel and thread
settings, and the library versions. Each training stage writes one record beside its model
(`metrics/provenance/<model>.json`, committed), because those are what decide the last bits
of a trained model: the same inputs and params give the same bytes on the same CPU model,
and other bytes on another (docs/reproducibility.md).

The CPU is read with the CPUID instruction (py-cpuinfo) and glibc's cache sizes (which come
from CPUID too), not from /proc/cpuinfo: that is what oneDNN, Eigen and OpenBLAS read when
they choose kernels and block sizes, and it is what an emulated CPU (qemu-user) changes.
Nothing that varies between runs on one machine (clock speed, core count, time) is recorded,
so a rebuild on the same CPU model leaves the records unchanged.
"""

import ctypes
import ctypes.util
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from imgclf.core.cpu import PINNED_ENVIRONMENT, is_x86
from imgclf.core.fileio import write_json

# glibc's sysconf names for the data caches (bits/confname.h); Python 3.11 lacks them.
_GLIBC_CACHE_NAMES = {"l1d": 188, "l2": 191, "l3": 194}
# The x86-64 micro-architecture levels by the features NumPy detected (psABI names).
_LEVELS = (
    ("x86-64-v4", ("AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL")),
    ("x86-64-v3", ("AVX", "AVX2", "FMA3", "F16C")),
    ("x86-64-v2", ("SSE42", "POPCNT", "SSSE3")),
)
# Each library by the distributions that install it (tensorflow-cpu on Linux x86-64).
LIBRARIES = {
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python"),
    "scikit-learn": ("scikit-learn",),
    "h5py": ("h5py",),
}
CPU_IDENTITY = ("vendor", "name", "family", "model", "stepping", "caches")


def write_provenance(path: Path | str, deterministic: bool) -> None:
    """Record this machine as the one that made the artifact whose record is `path`."""
    write_json(path, machine_record(deterministic))


def machine_record(deterministic: bool) -> dict[str, Any]:
    """This process's machine as a JSON-ready record (see the module docstring)."""
    return {
        "cpu": cpu_record(),
        "deterministic": deterministic,
        "kernels": _kernels(deterministic),
        "threads": _threads(),
        "libraries": {
            "python": platform.python_version(),
            **{name: _version(*distributions) for name, distributions in LIBRARIES.items()},
        },
        "platform": f"{platform.system()} {platform.machine()}",
    }


def cpu_record() -> dict[str, Any]:
    """The CPU's vendor, name, family/model/stepping, instruction-set level and data caches."""
    found: dict[str, Any] = {}
    if is_x86():
        # py-cpuinfo's CPUID reader, called directly: its get_cpu_info also times the clock
        # and swallows errors; it returned nothing once on one loaded core under qemu.
        from cpuinfo.cpuinfo import CPUID

        cpuid = CPUID()
        found = {
            "vendor_id_raw": cpuid.get_vendor_id(),
            "brand_raw": cpuid.get_processor_brand(cpuid.get_max_extension_support()),
            **cpuid.get_info(),
        }
    return {
        "vendor": found.get("vendor_id_raw", platform.machine()),
        "name": found.get("brand_raw", platform.processor() or platform.machine()),
        "family": found.get("family"),
        "model": found.get("model"),
        "stepping": found.get("stepping"),
        "isa_level": isa_level(),
        "caches": _caches(),
    }


def same_cpu_model(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two records' CPUs are the same model with the same caches (clock speed and
    core count aside)."""
    return all(first.get(key) == second.get(key) for key in CPU_IDENTITY)


def describe_cpu(cpu: dict[str, Any]) -> str:
    """One line: 'AMD EPYC (AuthenticAMD family 25 model 17, x86-64-v4; L2 1 MiB, L3 320 MiB)'."""
    caches = ", ".join(
        f"{level.upper()} {_mebibytes(size)}" for level, size in cpu.get("caches", {}).items()
    )
    return (
        f"{cpu.get('name')} ({cpu.get('vendor')} family {cpu.get('family')} model "
        f"{cpu.get('model')}, {cpu.get('isa_level')}; {caches})"
    )


def isa_level() -> str:
    """The newest x86-64 level whose features the CPU has (NumPy's CPUID reading)."""
    if not is_x86():
        return platform.machine()
    from numpy._core._multiarray_umath import __cpu_features__

    for level, features in _LEVELS:
        if all(__cpu_features__.get(feature) for feature in features):
            return level
    return "x86-64"


def _kernels(deterministic: bool) -> dict[str, str | None]:
    """The kernel choices in force: oneDNN's cap (set by the deterministic set-up) and the
    NumPy/OpenBLAS pins."""
    names = ("ONEDNN_MAX_CPU_ISA", *PINNED_ENVIRONMENT)
    kernels = {name: os.environ.get(name) for name in names}
    if not deterministic:
        kernels["ONEDNN_MAX_CPU_ISA"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "newest")
    return kernels


def _threads() -> dict[str, int | None]:
    """TensorFlow's intra-op pool (if TensorFlow is loaded) and the BLAS pools' sizes."""
    import sys

    from threadpoolctl import threadpool_info

    threads: dict[str, int | None] = {"tensorflow_intra_op": None}
    if "tensorflow" in sys.modules:
        tensorflow = sys.modules["tensorflow"]
        threads["tensorflow_intra_op"] = (
            tensorflow.config.threading.get_intra_op_parallelism_threads() or None
        )
    for pool in threadpool_info():  # OpenBLAS, OpenMP: the largest of each kind loaded
        kind = pool["internal_api"]
        threads[kind] = max(threads.get(kind) or 0, pool["num_threads"])
    return threads


def _caches() -> dict[str, int]:
    """Data cache sizes in bytes, as glibc reads them from CPUID (empty where unknown)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return {}
    sizes = {level: libc.sysconf(name) for level, name in _GLIBC_CACHE_NAMES.items()}
    return {level: size for level, size in sizes.items() if size > 0}


def _mebibytes(size: int) -> str:
    return f"{size // 1024} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:g} MiB"


def _version(*distributions: str) -> str | None:
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None
