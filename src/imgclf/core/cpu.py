"""Which CPU kernels the numeric libraries run, so that results are bit-identical on one CPU
model whatever its core count, and run the same kernels on every x86-64 CPU with AVX2 (what
that makes identical across CPU models, and what not: docs/reproducibility.md).

Libraries pick their kernels by the instruction sets of the CPU they run on, and split sums
over as many threads as it has cores; either changes the last bits of a float, and training
grows them into other weights. Two kinds of settings remove both:

- set when `imgclf` is imported, before NumPy and TensorFlow load, in both modes (they cost
  nothing measurable here, and neither library can change them once loaded): NumPy's AVX-512
  loops off (`NPY_DISABLE_CPU_FEATURES`), OpenBLAS, NumPy's and SciPy's, on its Haswell
  (AVX2) kernels (`OPENBLAS_CORETYPE`), and TensorFlow's oneDNN kernels on
  (`TF_ENABLE_ONEDNN_OPTS`): by default TensorFlow turns them on only on CPUs with
  AVX512_VNNI, AVX512_BF16 or AMX and runs Eigen's elsewhere, so two CPU models ran two
  different sets of kernels (emulated Haswell and EPYC-Rome trained different models with
  Eigen, and one model with oneDNN: tests/pipeline/test_cpu_models.py);
- with `base.deterministic: true`, by `pin_threads` (and TensorFlow's own settings in
  `imgclf.models.runtime`): one BLAS/OpenMP thread, so no sum is split by the core count.

A variable the user already set is kept; `check_pins` then says what to unset.

The kernel pins exist only on x86-64 (Haswell kernels, AVX-512 loops, oneDNN's AVX2 cap name
x86 code). Elsewhere (Linux aarch64, macOS arm64) only the thread pins apply: results repeat
on one CPU model whatever its core count, and nothing is promised across CPU models.
"""

import os
import platform

from imgclf.core.errors import UserError

# NumPy 2.x dispatch targets above AVX2 (X86_V3); names of absent features are ignored.
NUMPY_DISABLED = "X86_V4 AVX512_ICL AVX512_SPR"
OPENBLAS_CORE = "Haswell"
X86_PINS = {
    "NPY_DISABLE_CPU_FEATURES": NUMPY_DISABLED,
    "OPENBLAS_CORETYPE": OPENBLAS_CORE,
    "TF_ENABLE_ONEDNN_OPTS": "1",
}


def is_x86(machine: str | None = None) -> bool:
    """Whether `machine` (this one's, by default) is an x86-64 CPU."""
    return (machine or platform.machine()).lower() in ("x86_64", "amd64")


def pins_for(machine: str | None = None) -> dict[str, str]:
    """The kernel pins that exist on `machine` (this one's, by default)."""
    return dict(X86_PINS) if is_x86(machine) else {}


PINNED_ENVIRONMENT = pins_for()


def pin_before_numpy() -> None:
    """Set the kernel choices that NumPy, OpenBLAS and TensorFlow read when they load."""
    for name, value in PINNED_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def pin_threads() -> None:
    """One thread for BLAS and OpenMP (scikit-learn's loss sums), for the rest of the process,
    and check that the kernel pins took effect."""
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, so the limit reaches it too)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    check_pins()


def check_pins() -> None:
    """Raise a one-line error if NumPy or OpenBLAS run kernels other than the pinned ones
    (an environment variable set otherwise, or NumPy loaded before imgclf)."""
    from numpy._core._multiarray_umath import __cpu_features__
    from threadpoolctl import threadpool_info

    for name, value in PINNED_ENVIRONMENT.items():
        if os.environ.get(name) != value:
            raise UserError(
                f"{name}={os.environ.get(name, '')!r} in the environment: deterministic "
                f"results need {value!r}; unset it, or set base.deterministic: false"
            )
    if not is_x86():
        return  # no kernel pins here (see the module docstring)
    if any(__cpu_features__.get(feature) for feature in NUMPY_DISABLED.split()):
        raise UserError(
            "NumPy loaded its AVX-512 loops (it was imported before imgclf): import imgclf "
            "first, or set base.deterministic: false"
        )
    for library in threadpool_info():
        architecture = library.get("architecture")
        if library["internal_api"] == "openblas" and architecture != OPENBLAS_CORE:
            raise UserError(
                f"{library['filepath']}: OpenBLAS runs {architecture} kernels (it loaded "
                f"before imgclf): import imgclf first, or set base.deterministic: false"
            )
