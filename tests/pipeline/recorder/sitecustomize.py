"""Loaded by Python at start-up when this folder is on PYTHONPATH: records which params keys
a stage process reads (`IMGCLF_TEST_PARAMS_LOG` names the folder for the records), so that
tests/pipeline/test_stage_params.py can hold them against the stage's `params:` in dvc.yaml.

Every params section built by `imgclf.core.config` is tagged with its key prefix, and reading
one of its values records the full key (`dataclasses.asdict` of a section reads them all).
Nothing else changes.
"""

import atexit
import json
import os
import sys

LOG = os.environ.get("IMGCLF_TEST_PARAMS_LOG")

if LOG:
    # The stage's own library (the stage script puts it first as well).
    sys.path.insert(0, os.path.join(os.getcwd(), "src"))
    import imgclf.core.config as config

    read: set[str] = set()
    loaded = []  # non-empty once params.yaml is loaded: validation reads are not uses
    build_section, load_params = config.build_section, config.load_params

    def recording_load_params(*args, **kwargs):
        params = load_params(*args, **kwargs)
        loaded.append(True)
        return params

    def tagged_section(cls, raw, *, path="params.yaml", prefix=""):
        section = build_section(cls, raw, path=path, prefix=prefix)
        object.__setattr__(section, "_recorded_prefix", prefix)
        return section

    def recording_getattribute(self, name):
        value = object.__getattribute__(self, name)
        # Leaves only: reaching a section on the way to its keys reads none of them.
        fields = type(self).__dataclass_fields__
        if loaded and name in fields and not isinstance(value, config.Section):
            prefix = object.__getattribute__(self, "__dict__").get("_recorded_prefix")
            if prefix is not None:
                read.add(prefix + name)
        return value

    def write_record() -> None:
        os.makedirs(LOG, exist_ok=True)
        record = {"argv": sys.argv, "read": sorted(read)}
        with open(os.path.join(LOG, f"{os.getpid()}.json"), "w", encoding="utf-8") as out:
            json.dump(record, out)

    config.build_section = tagged_section
    config.load_params = recording_load_params
    config.Section.__getattribute__ = recording_getattribute
    atexit.register(write_record)
