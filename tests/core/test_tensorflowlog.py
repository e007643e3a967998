"""TensorFlow's start-up notices follow TF_CPP_MIN_LOG_LEVEL (imgclf sets 2) even where abseil
prints them before its logging starts; nothing else written meanwhile is lost."""

import os
import subprocess
import sys

import pytest

from imgclf.core.tensorflowlog import ABSEIL_NOTE, held_back_stderr, passed_on

NOTICE = "I0000 00:00:1796390566.509618    7592 port.cc:153] oneDNN custom operations are on.\n"
WARNING = "W0000 00:00:1796390566.6    7592 cpu_feature_guard.cc:1] a warning record\n"
ERROR = "E1204 13:05:48.123456    7592 session.cc:99] an error record\n"
PYTHON_WARNING = "x.py:1: DeprecationWarning: old\n"
TEXT = f"{ABSEIL_NOTE} STDERR\n{NOTICE}{WARNING}{PYTHON_WARNING}{ERROR}"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (0, TEXT),
        (1, f"{WARNING}{PYTHON_WARNING}{ERROR}"),
        (2, f"{PYTHON_WARNING}{ERROR}"),
        (3, PYTHON_WARNING),
    ],
)
def test_records_under_the_level_are_dropped_and_nothing_else(level: int, expected: str) -> None:
    assert passed_on(TEXT, level) == expected


def test_what_the_process_writes_meanwhile_comes_out_after(capfd: pytest.CaptureFixture) -> None:
    with held_back_stderr(2):
        os.write(2, f"{ABSEIL_NOTE} STDERR\n{NOTICE}a C library's error\n".encode())
        os.write(2, f"{PYTHON_WARNING}".encode())
        assert capfd.readouterr().err == ""  # held back until the import is done
    assert capfd.readouterr().err == f"a C library's error\n{PYTHON_WARNING}"


def import_tensorflow(level: str | None) -> str:
    """stderr of a fresh process that imports imgclf, then tensorflow."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    code = "import imgclf, tensorflow; tensorflow.constant(1.0) + 1"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stderr


def test_importing_tensorflow_after_imgclf_prints_nothing() -> None:
    assert import_tensorflow(None) == ""


def test_a_user_who_asks_for_the_notices_gets_them() -> None:
    """The same import at level 0: abseil's note and oneDNN's notice are there to hide."""
    stderr = import_tensorflow("0")
    assert ABSEIL_NOTE in stderr and "oneDNN custom operations are on" in stderr
