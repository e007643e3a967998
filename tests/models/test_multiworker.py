"""imgclf.models.multiworker's cluster: TF_CONFIG checked with one clear error, and the chief.

Training under multi_worker itself runs in tests/test_distributed.py (2 worker processes)."""

import json

import pytest

from imgclf.core.errors import UserError
from imgclf.models import multiworker


def set_tf_config(monkeypatch: pytest.MonkeyPatch, cluster: dict, task: dict) -> None:
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))


WORKERS = ["127.0.0.1:2000", "127.0.0.1:2001"]


@pytest.mark.parametrize(
    ("cluster", "task", "chief"),
    [
        ({"worker": WORKERS}, {"type": "worker", "index": 0}, True),
        ({"worker": WORKERS}, {"type": "worker", "index": 1}, False),
        ({"chief": ["127.0.0.1:1999"], "worker": WORKERS}, {"type": "chief", "index": 0}, True),
        ({"chief": ["127.0.0.1:1999"], "worker": WORKERS}, {"type": "worker", "index": 0}, False),
    ],
)
def test_is_chief_follows_tf_config(
    monkeypatch: pytest.MonkeyPatch, cluster: dict, task: dict, chief: bool
) -> None:
    set_tf_config(monkeypatch, cluster, task)
    assert multiworker.is_chief() is chief


def test_a_single_process_is_the_chief(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert multiworker.is_chief()
    assert multiworker.read_tf_config() is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "TF_CONFIG is not valid"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is not valid"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "needs .worker."),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "lists of"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "not in"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "not in"),
    ],
)
def test_bad_tf_config_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(UserError, match=message):
        multiworker.is_chief()
