"""Params as the pipeline reads them: the repository's params.yaml, with keys overridden."""

import copy
from typing import Any

import yaml

from imgclf.core.config import Params, build_section
from support import REPO


def repo_params_dict() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def make_params(**sections: dict[str, Any]) -> Params:
    """The repo's params with some keys replaced, e.g. make_params(split={"val": 0.2})."""
    raw = copy.deepcopy(repo_params_dict())
    for section, values in sections.items():
        raw[section].update(values)
    return build_section(Params, raw)
