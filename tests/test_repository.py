"""What git holds: no credentials in any committed file (they go in `.dvc/config.local` or
the environment, which git never sees)."""

import re
import subprocess

import pytest

from support import REPO

# Written so that this file does not match itself.
SECRETS = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-{5}BEGIN [A-Z ]*PRIVATE KEY-{5}"),
}
# Options of DVC remotes (and the usual config files) that hold secrets.
SECRET_OPTIONS = re.compile(
    r"^\s*(access_key_id|secret_access_key|session_token|password|passphrase|account_key"
    r"|sas_token|connection_string|gdrive_client_secret|token)\s*[=:]\s*\S",
    re.IGNORECASE | re.MULTILINE,
)
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".cfg", ".ini", ".json", ".env", "config")


def committed_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return listed.stdout.splitlines()


def test_no_committed_file_holds_credentials() -> None:
    files = committed_files()
    assert ".dvc/config" in files
    found = []
    for name in files:
        path = REPO / name
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        found += [f"{name}: {kind}" for kind, pattern in SECRETS.items() if pattern.search(text)]
        if name.endswith(CONFIG_SUFFIXES) and (option := SECRET_OPTIONS.search(text)):
            found.append(f"{name}: {option[1]} set in a committed file")
    assert found == [], "move these to .dvc/config.local or the environment"


def test_the_check_sees_a_planted_secret() -> None:
    """The patterns match what they guard (a key id is 20 characters)."""
    key = "AKIA" + "ABCDEFGHIJ234567"
    assert SECRETS["an AWS access key id"].search(f"key = {key}")
    assert SECRET_OPTIONS.search("['remote \"s3\"']\n    secret_access_key = abc\n")
    assert not SECRET_OPTIONS.search("    url = s3://bucket/imgclf\n")
