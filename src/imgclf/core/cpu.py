"""Which CPU kernels the numeric libraries run, so that results are bit-identical on any
x86-64 CPU with AVX2, whatever its core count.

Libraries pick their kernels by the instruction sets of the CPU they run on, and split sums
over as many threads as it has cores; either changes the last bits of a float, and training
grows them into other weights. Two kinds of settings remove both:

- set when `imgclf` is imported, before NumPy loads, in both modes (they cost nothing
  measurable here, and NumPy cannot change them once loaded): NumPy's AVX-512 loops off
  (`NPY_DISABLE_CPU_FEATURES`) and OpenBLAS, NumPy's and SciPy's, on its Haswell (AVX2)
  kernels (`OPENBLAS_CORETYPE`);
- with `base.deterministic: true`, by `pin_threads` (and TensorFlow's own settings in
  `imgclf.models.runtime`): one BLAS/OpenMP thread, so no sum is split by the core count.

A variable the user already set is kept; `check_pins` then says what to unset.
"""

import os

from imgclf.core.errors import UserError

# NumPy 2.x dispatch targets above AVX2 (X86_V3); names of absent features are ignored.
NUMPY_DISABLED = "X86_V4 AVX512_ICL AVX512_SPR"
OPENBLAS_CORE = "Haswell"
PINNED_ENVIRONMENT = {
    "NPY_DISABLE_CPU_FEATURES": NUMPY_DISABLED,
    "OPENBLAS_CORETYPE": OPENBLAS_CORE,
}


def pin_before_numpy() -> None:
    """Set the kernel choices that NumPy and OpenBLAS read when they load."""
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
