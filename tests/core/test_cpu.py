"""The kernel pins by CPU architecture: x86-64 gets the three that exist there, other
architectures none (Haswell kernels and AVX-512 loops are x86 names; an ARM OpenBLAS told
`OPENBLAS_CORETYPE=Haswell` would run its own kernels and the check would stop every stage).
Only x86-64 runs here: the other side is what the function decides, not a run on ARM."""

import os

import pytest

from imgclf.core.cpu import PINNED_ENVIRONMENT, X86_PINS, check_pins, is_x86, pins_for


@pytest.mark.parametrize("machine", ["x86_64", "AMD64"])
def test_x86_machines_get_every_kernel_pin(machine: str) -> None:
    assert is_x86(machine)
    assert pins_for(machine) == {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Haswell",
        "TF_ENABLE_ONEDNN_OPTS": "1",
    }


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le"])
def test_other_machines_get_no_kernel_pin(machine: str) -> None:
    assert not is_x86(machine) and pins_for(machine) == {}


def test_this_machine_runs_the_pinned_kernels() -> None:
    """(imgclf was imported first, by the test set-up, so the pins took effect.)"""
    assert (X86_PINS if is_x86() else {}) == PINNED_ENVIRONMENT
    assert all(os.environ[name] == value for name, value in PINNED_ENVIRONMENT.items())
    check_pins()
