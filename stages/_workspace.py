"""Imported first by every stage script: puts the `src/` of the checkout this script belongs
to at the front of `sys.path`, so a stage runs the library of the workspace it runs in.

The editable install points Python at the original checkout's `src/`; DVC runs queued and
temporary experiments in copies of the repository, whose stages would otherwise import the
original's library (and record hashes of code that did not run).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
