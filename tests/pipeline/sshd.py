"""A throwaway OpenSSH server on 127.0.0.1 for tests of SSH remotes.

`running_sshd(folder)` starts `sshd -D -e` as the current user with its own host key, client
key and config under `folder`, waits until it answers with an SSH banner and stops it on
exit. The `sshd` fixture (import `sshd_fixture` into a test module) wraps it: when sshd
cannot start, the test fails in CI (env `CI` set) and is skipped elsewhere, with the reason.
"""

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
_START_TIMEOUT_S = 120.0  # a hang guard: a loaded one-core machine may start sshd slowly
_SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",  # Debian, Ubuntu
    "/usr/libexec/openssh/sftp-server",  # Fedora, RHEL
    "/usr/libexec/sftp-server",  # Alpine, macOS
)


class SshdUnavailable(RuntimeError):
    """sshd is missing or did not start; the message says why."""


@dataclass(frozen=True)
class Sshd:
    """A running server: where it listens, who may log in, and with which key."""

    port: int
    user: str
    client_key: Path
    known_hosts: Path  # "[127.0.0.1]:port <host key>", as OpenSSH writes it
    log: Path  # sshd's own log (-e): connections, authentication, errors

    def url(self, path: Path) -> str:
        """An ssh:// URL of an absolute path on this server, as DVC remotes spell it."""
        return f"ssh://{self.user}@{HOST}:{self.port}{path.resolve()}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _find_sshd() -> str:
    sshd = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")
    if sshd is None:
        raise SshdUnavailable("sshd not found (Debian: apt-get install openssh-server)")
    return sshd


def _sftp_subsystem() -> str:
    found = [path for path in _SFTP_SERVERS if os.access(path, os.X_OK)]
    # internal-sftp needs no helper binary, but the test is closer to a real server with one.
    return found[0] if found else "internal-sftp"


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def _write_config(folder: Path, port: int) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {HOST}",
                f"Port {port}",
                f"HostKey {folder / 'host_key'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                f"PidFile {folder / 'sshd.pid'}",
                "UsePAM no",
                "StrictModes no",  # the temp dir's modes are not a real home's
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                f"Subsystem sftp {_sftp_subsystem()}",
                "LogLevel VERBOSE",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config


def _wait_for_banner(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SshdUnavailable(f"sshd exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as sock:
            if sock.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.1)
    raise SshdUnavailable(f"sshd did not answer on {HOST}:{port} within {_START_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[Sshd]:
    """sshd on a free port of 127.0.0.1, logging to `folder/sshd.log`; raises SshdUnavailable."""
    sshd = _find_sshd()
    folder.mkdir(parents=True, exist_ok=True)
    # Privilege separation needs this directory when sshd runs as root.
    with contextlib.suppress(OSError):
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    shutil.copyfile(folder / "client_key.pub", folder / "authorized_keys")
    port = _free_port()
    known_hosts = folder / "known_hosts"
    host_key = (folder / "host_key.pub").read_text(encoding="utf-8").split()[:2]
    known_hosts.write_text(f"[{HOST}]:{port} {' '.join(host_key)}\n", encoding="utf-8")
    log = folder / "sshd.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(_write_config(folder, port))],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    try:
        try:
            _wait_for_banner(process, port)
        except SshdUnavailable as error:
            _stop(process)
            raise SshdUnavailable(
                f"{error}; its log:\n{log.read_text(errors='replace')}"
            ) from None
        yield Sshd(port, getpass.getuser(), folder / "client_key", known_hosts, log)
    finally:
        _stop(process)


@pytest.fixture(scope="module", name="sshd")
def sshd_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A module-wide sshd; fails in CI and skips elsewhere when it cannot run."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_sshd(tmp_path_factory.mktemp("sshd")))
        except (SshdUnavailable, OSError, subprocess.CalledProcessError) as error:
            reason = f"cannot run sshd for the SSH remote tests: {error}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        yield server
