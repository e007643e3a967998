"""Loaded by Python at start-up when this folder is on PYTHONPATH: injects one fault, named by
`IMGCLF_TEST_FAULT` (JSON), at an exact moment of a `dvc` or stage process, never after a
delay, so that the fault tests give the same outcome on any machine.

Keys of the fault:
- `at`: "dump" (DVC serializes a YAML or JSON file, or its rwlock, into a stream whose name
  matches `match`: the text is written up to a point that leaves an invalid file (see
  `cut_off`) and flushed, then the kill: a write cut off), "rename" (just before an
  `os.rename`/`os.replace` whose target matches `match`; with `after`, at the first audited
  action once it is done), "open" (just before Python opens a file whose path matches
  `match`), "popen" (just before a subprocess whose argv matches `match` starts) or "start"
  (as the process starts);
- `nth`: which matching moment (1 = the first) in the process;
- `after_stage`: count moments only once `dvc` has started that stage's command (a fault of
  `dvc` itself as it finishes that stage);
- `stage`: the DVC stage whose process it is (`DVC_STAGE`); absent: a process outside any
  stage (`dvc` itself, or a stage command run by hand);
- `kill`: "self" (SIGKILL this process) or "group" (its process group: `dvc` and its stage);
- `pause`: instead of a kill, write `<pause>.paused` and wait until the file `pause` exists;
- `unguard`: DVC as pip installs it, in every process that sees the variable (the start-up
  hook `imgclf_startup` is taken off before DVC loads): what the guard prevents; alone,
  without `at`, a process with no fault and no guard;
- `log`: a file that gets one JSON line when the fault fires.
"""

import io
import json
import os
import re
import signal
import sys
import time

FAULT = json.loads(os.environ.get("IMGCLF_TEST_FAULT") or "null")

if FAULT is not None and FAULT.get("unguard"):
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if finder.__module__ != "imgclf_startup"
    ]


def _ours() -> bool:
    return (
        FAULT is not None and "at" in FAULT and os.environ.get("DVC_STAGE") == FAULT.get("stage")
    )


if _ours():
    seen = 0
    fired = False
    armed = FAULT.get("after_stage") is None

    def _due(target: str) -> bool:
        global seen, fired
        if fired or not armed or not re.search(FAULT.get("match", ""), target):
            return False
        seen += 1
        fired = seen == FAULT.get("nth", 1)
        return fired

    def _fire(target: str) -> None:
        if log := FAULT.get("log"):
            record = {"pid": os.getpid(), "at": FAULT["at"], "target": target}
            with open(log, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
        if pause := FAULT.get("pause"):
            with open(pause + ".paused", "w", encoding="utf-8"):
                pass
            while not os.path.exists(pause):
                time.sleep(0.01)  # (a wait for the test's word, not a timing)
            return
        if FAULT["kill"] == "group":
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    if FAULT["at"] == "start":
        _fire(" ".join(sys.argv))

    renamed = []  # with `after`: the (source, target) of the rename to wait for

    def _audit(name: str, args: tuple) -> None:
        global armed
        if renamed:  # the first audited action once the rename is done
            source, target = renamed[0]
            if not os.path.exists(source):
                renamed.clear()  # (the kill is audited too)
                _fire(target)
        elif name == "subprocess.Popen" and not armed:
            armed = (args[3] or {}).get("DVC_STAGE") == FAULT["after_stage"]
        elif name == "subprocess.Popen" and FAULT["at"] == "popen":
            if _due(str(args[1])):
                _fire(str(args[1]))
        elif name == "open" and FAULT["at"] == "open":
            if _due(target := str(args[0])):
                _fire(target)
        elif name == "os.rename" and FAULT["at"] == "rename":
            target = os.fsdecode(args[1])
            if not _due(target):
                return
            if FAULT.get("after"):
                renamed.append((os.fsdecode(args[0]), target))
            else:
                _fire(target)

    sys.addaudithook(_audit)

    if FAULT["at"] == "dump":
        import dvc.rwlock
        import dvc.utils.serialize._json as json_serializer
        import dvc.utils.serialize._yaml as yaml_serializer

        def cut_off(text: str) -> str:
            """The text up to the last line in its first half that opens a YAML block (a
            key whose value was to follow): a cut that leaves an invalid lock, where a cut
            inside a value can leave a valid one. Half of it where there is none (JSON)."""
            half = text[: len(text) // 2]
            opener = half.rfind(":\n")
            return half[: opener + 2] if opener >= 0 else half

        from imgclf.core.atomicfiles import TEMPORARY_NAME

        def written(stream) -> str:
            """The file a stream writes: the guard's temporary stands for its target."""
            folder, name = os.path.split(str(getattr(stream, "name", "")))
            if match := TEMPORARY_NAME.fullmatch(name):
                name = match["stem"] + (match["suffix"] or "")
            return os.path.join(folder, name)

        def cutting(dumper):
            def dump(data, stream, *args, **kwargs):
                target = written(stream)
                if not _due(target):
                    return dumper(data, stream, *args, **kwargs)
                text = io.StringIO()
                dumper(data, text, *args, **kwargs)
                stream.write(cut_off(text.getvalue()))
                stream.flush()
                _fire(target)

            return dump

        yaml_serializer._dump = cutting(yaml_serializer._dump)
        json_serializer._dump_json = cutting(json_serializer._dump_json)
        dvc.rwlock.json = type(sys)("json")
        dvc.rwlock.json.__dict__.update(vars(json))
        dvc.rwlock.json.dump = cutting(json.dump)
