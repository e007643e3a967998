"""Remotes, tested for real: push a built pipeline to a local, an SSH and an S3 remote,
clone, pull; pushes and pulls killed midway complete when run again.

The tests copy the session's built project (conftest.built_project) once for this module;
each test pushes to its own remote and clones into its own folder, so none depends on
another. The SSH remote is a real OpenSSH sshd on 127.0.0.1 (tests/sshd.py), the S3 remote
moto's S3-compatible server on 127.0.0.1.
"""

import hashlib
import json
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from sshd import Sshd, sshd_fixture  # noqa: F401  (the sshd fixture)

from imgclf.models.backbones import build_backbone
from support.project import SPLITS, Output, Project, pipeline_outputs

pytestmark = pytest.mark.slow

# Predictions are `push: false` (cheap, and rerunning gives the same bytes): a clone makes them
# (the exports' too: the SavedModel and LiteRT files come from the remote, not reconverted).
REMADE_BY_CLONE = [
    "ensemble",
    "predict_cnn@0",
    "predict_export",
    "predict_finetune",
    "predict_logreg",
]
FEATURES = [f"features@{split}" for split in SPLITS]
# What `features@*` needs and makes, all in the DVC cache (index and split outputs aside).
FEATURE_INPUTS_AND_OUTPUTS = [
    "models/backbone.keras",
    *(f"data/{kind}/{split}.h5" for kind in ("processed", "features") for split in SPLITS),
]
WEIGHTS = "weights/minivggnet.weights.h5"  # git-ignored: stands in for a downloaded file
# A large tracked file, so that a transfer lasts long enough to be killed midway.
LARGE = "data/large.bin"
HANG_GUARD_S = 300  # not a speed claim: only so that a hung transfer fails the test


class Checkout(Project):
    """An existing repository (a clone) driven like Project."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = dict(env)


def clone(source: Project, root: Path) -> Checkout:
    source.command("git", "clone", "-q", str(source.root), str(root))
    return Checkout(root, source.env)


def add_remote(project: Project, name: str, url: str, *flags: str, **options: str) -> None:
    """A remote in .dvc/config.local: the tests leave the shared repository's git alone."""
    project.dvc("remote", "add", "--local", *flags, name, url)
    for key, value in options.items():
        project.dvc("remote", "modify", "--local", name, key, value)


def cloud_status(project: Project, remote: str, *args: str) -> dict[str, str]:
    return json.loads(project.dvc("status", "--cloud", "-r", remote, "--json", *args).stdout)


def pushed(project: Project) -> list[Output]:
    """What `dvc push` sends: cached outputs (not what evaluate and report write, which git
    holds) that are not `push: false`."""
    return [output for output in pipeline_outputs(project.root) if output.cached and output.pushed]


def tracked(outputs: list[Output]) -> list[str]:
    """The DVC outputs that hold these files (a folder output counts once)."""
    return sorted({output.out for output in outputs})


def status_names(project: Project, outputs: list[Output]) -> list[str]:
    """The outputs `dvc status --cloud` names for these files: a folder output once, and of
    file outputs with the same bytes (the two header-only rejected.csv files) the first
    only: DVC stores one object for them and lists one output per object."""
    names, seen = [], set()
    for name in dict.fromkeys(output.out for output in outputs):
        path = project.root / name
        digest = hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else name
        if digest not in seen:
            seen.add(digest)
            names.append(name)
    return sorted(names)


def paths(outputs: list[Output]) -> list[str]:
    return [output.path for output in outputs]


def push(
    project: Project, remote: str, *args: str, expected: list[str], after_kill: bool = False
) -> None:
    """Push; the remote lacks the `expected` outputs before (some may be there already if
    an earlier push was killed), and lacks nothing after."""
    missing = cloud_status(project, remote, *args)
    assert set(missing.values()) == {"new"}
    if not after_kill:
        assert set(expected) <= set(missing)
    not_pushed = [o for o in pipeline_outputs(project.root) if o.cached and not o.pushed]
    assert not set(tracked(not_pushed)) & set(missing)
    started = time.monotonic()
    result = project.dvc("push", "-r", remote, *args)
    print(f"push -r {remote}: {time.monotonic() - started:.1f} s, {result.stdout.strip()}")
    assert cloud_status(project, remote, *args) == {}
    assert "in sync" in project.dvc("status", "--cloud", "-r", remote, *args).stdout


def pull(project: Project, remote: str, *args: str) -> None:
    started = time.monotonic()
    result = project.dvc("pull", "-r", remote, *args)
    summary = result.stdout.strip().splitlines()[-1]
    print(f"pull -r {remote}: {time.monotonic() - started:.1f} s, {summary}")


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def kill_midway(project: Project, objects: Path, *args: str, unguard: bool = False) -> int:
    """Run `dvc *args` and SIGKILL it (its whole process group) as it opens its second object
    file under `objects` (the store or cache it writes to, or the cache an SSH push reads):
    the transfer has begun and not finished. Returns how many files `objects` then held."""
    pattern = rf"^{re.escape(str(objects))}/files/md5/[0-9a-f]{{2}}/"
    faulty = project.with_fault(at="open", match=pattern, nth=2, kill="group", unguard=unguard)
    transfer = faulty.start(faulty.dvc_argv(*args))
    assert transfer.wait(timeout=HANG_GUARD_S) == -signal.SIGKILL, f"dvc {args} was not killed"
    return len(files_under(objects))


def verified_objects(files: Path) -> int:
    """Check every object under a DVC cache or remote's `files/md5/`: its content has the
    MD5 its name says. Returns how many there are."""
    objects = [
        path
        for path in files_under(files / "md5")
        if len(path.parent.name) == 2 and not path.name.startswith(".")
    ]
    for path in objects:
        name = path.parent.name + path.name.removesuffix(".dir")
        assert hashlib.md5(path.read_bytes()).hexdigest() == name, f"{path} is damaged"
    return len(objects)


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def assert_same_files(one: Path, other: Path, names: list[str]) -> None:
    for name in names:
        assert (other / name).read_bytes() == (one / name).read_bytes(), name


@pytest.fixture(scope="module")
def built(built_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """This module's copy of the built, committed pipeline, with a large tracked file."""
    project = Project(tmp_path_factory.mktemp("remotes") / "a", template=built_project)
    (project.root / LARGE).write_bytes(np.random.default_rng(0).bytes(64 << 20))
    project.dvc("add", LARGE)
    project.commit("a large file")
    return project


def test_local_remote_round_trip(built: Project, tmp_path: Path) -> None:
    """The one-step recipe for a teammate: `dvc repro --pull` with a default remote."""
    store = str(tmp_path / "store")
    add_remote(built, "local", store)
    killed_at = kill_midway(built, tmp_path / "store", "push", "-r", "local")
    push(built, "local", expected=status_names(built, pushed(built)), after_kill=True)
    objects = verified_objects(tmp_path / "store" / "files")
    print(
        f"local remote: {tree_size(tmp_path / 'store') / 1e6:.2f} MB, push killed at "
        f"{killed_at} files, then {objects} objects verified"
    )
    teammate = clone(built, tmp_path / "b")
    add_remote(teammate, "local", store, "--default")
    cache = teammate.root / ".dvc" / "cache" / "files"
    killed_at = kill_midway(teammate, cache.parent, "pull", "--allow-missing")
    print(f"pull killed at {killed_at} files in the clone's cache")
    started = time.monotonic()
    assert sorted(teammate.repro("--pull")) == REMADE_BY_CLONE
    print(f"repro --pull: {time.monotonic() - started:.1f} s")
    teammate.dvc("pull", LARGE)  # `repro --pull` pulls only what stages use
    assert_same_files(built.root, teammate.root, [*paths(pipeline_outputs(built.root)), LARGE])
    assert verified_objects(cache) >= len(pushed(built))
    assert "up to date" in teammate.dvc("status").stdout
    assert teammate.repro() == []


def ssh_user(built: Project, tmp_path: Path, sshd: Sshd) -> tuple[Checkout, str, str]:
    """The built project with an SSH remote on sshd: the checkout, the URL and the key."""
    # dvc-ssh 4.3 has no known_hosts option and passes known_hosts=None to asyncssh, which
    # turns host-key checking off; a correct ~/.ssh/known_hosts is all a user could provide.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copyfile(sshd.known_hosts, home / ".ssh" / "known_hosts")
    user = Checkout(built.root, {**built.env, "HOME": str(home)})
    url, keyfile = sshd.url(tmp_path / "store"), str(sshd.client_key)
    add_remote(user, "ssh", url, "--force", keyfile=keyfile)  # (each test its own store)
    return user, url, keyfile


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "unguarded"])
def test_ssh_push_killed_midway_completes_when_run_again(
    built: Project, tmp_path: Path, sshd: Sshd, guarded: bool
) -> None:
    """Killed as it lists what to send (it reads its second cache object: a directory's
    listing), a push run again sends everything. Without the guard DVC reuses the partial
    list the killed run left in its data index: the push succeeds with outputs missing."""
    user, _, _ = ssh_user(built, tmp_path, sshd)
    kill_midway(user, user.root / ".dvc" / "cache", "push", "-r", "ssh", unguard=not guarded)
    print(f"ssh push killed at {len(files_under(tmp_path / 'store'))} files")
    if guarded:
        push(user, "ssh", expected=status_names(built, pushed(built)), after_kill=True)
        return
    user.with_fault(unguard=True).dvc("push", "-r", "ssh")
    assert set(tracked(pushed(built))) & set(cloud_status(user, "ssh"))


def test_ssh_remote_round_trip(built: Project, tmp_path: Path, sshd: Sshd) -> None:
    """The two-step recipe: `dvc pull --allow-missing` (predictions are not pushed), `repro`."""
    try:
        user, url, keyfile = ssh_user(built, tmp_path, sshd)
        push(user, "ssh", expected=status_names(built, pushed(built)))
        teammate = clone(user, tmp_path / "b")
        add_remote(teammate, "ssh", url, keyfile=keyfile)
        cache = teammate.root / ".dvc" / "cache" / "files"
        killed_at = kill_midway(teammate, cache.parent, "pull", "-r", "ssh", "--allow-missing")
        print(f"ssh pull killed at {killed_at} files in the clone's cache")
        pull(teammate, "ssh", "--allow-missing")
    except AssertionError as error:
        raise AssertionError(f"{error}\nsshd log:\n{sshd.log.read_text()[-3000:]}") from None
    print(f"ssh remote: {tree_size(tmp_path / 'store') / 1e6:.2f} MB")
    assert verified_objects(tmp_path / "store" / "files") >= len(pushed(built))
    assert verified_objects(cache) >= len(pushed(built))
    assert_same_files(built.root, teammate.root, [*paths(pushed(built)), LARGE])
    assert sorted(teammate.repro()) == REMADE_BY_CLONE
    assert_same_files(built.root, teammate.root, paths(pipeline_outputs(built.root)))
    assert "up to date" in teammate.dvc("status").stdout


def offline_env(project: Project, keras_home: Path) -> dict[str, str]:
    """The environment with every HTTP(S) request sent to a closed local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = {key: value for key, value in project.env.items() if key.lower() != "no_proxy"}
    for key in ("http_proxy", "https_proxy", "all_proxy"):
        env[key] = env[key.upper()] = closed
    env["KERAS_HOME"] = str(keras_home)
    return env


def test_offline_clone_pulls_the_backbone_instead_of_its_weights(
    built: Project, tmp_path: Path
) -> None:
    # On the connected machine: a weights file (as if downloaded) builds the backbone.
    online = Project(tmp_path / "online", template=built)
    (online.root / WEIGHTS).parent.mkdir()
    build_backbone("minivggnet", (24, 24, 3), "none").save_weights(online.root / WEIGHTS)
    with (online.root / ".gitignore").open("a", encoding="utf-8") as ignore:
        ignore.write("/weights/\n")
    pretrain = yaml.safe_load((online.root / "params.yaml").read_text())["backbone"]["pretrain"]
    # No pretraining: no pretraining stages, and the backbone stage clears their packs.
    online.update_params("backbone", weights=WEIGHTS, pretrain={**pretrain, "sources": []})
    assert sorted(online.repro(*FEATURES)) == sorted(["backbone", *FEATURES])
    online.commit("backbone from a weights file")
    assert online.command("git", "ls-files", "weights").stdout == ""
    store = str(tmp_path / "store")
    add_remote(online, "store", store)
    # Targets alone push only their own outputs: the backbone and packs need --with-deps.
    push(online, "store", "--with-deps", *FEATURES, expected=FEATURE_INPUTS_AND_OUTPUTS)

    offline = clone(online, tmp_path / "offline")
    assert not (offline.root / WEIGHTS).exists()
    add_remote(offline, "store", store)
    pull(offline, "store", "--with-deps", *FEATURES)
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    offline.env = offline_env(offline, keras_home)
    download = [sys.executable, "-c", "import urllib.request as u; u.urlopen('https://keras.io')"]
    assert offline.command(*download, check=False).returncode != 0  # the block works
    status = offline.dvc("status", "--with-deps", *FEATURES).stdout  # why, if not clean
    assert "up to date" in status, status
    assert offline.repro(*FEATURES) == []
    # Features really compute offline from the pulled backbone, to the same bytes.
    assert offline.repro("--force", "--single-item", "features@test") == ["features@test"]
    assert_same_files(
        online.root, offline.root, ["data/features/test.h5", "models/backbone.keras"]
    )
    # Keras writes its keras.json there; a download would have gone to models/ or datasets/.
    assert [path.name for path in keras_home.rglob("*")] == ["keras.json"]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1, in this process; its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_s3_remote_round_trip(built: Project, tmp_path: Path, s3_endpoint: str) -> None:
    """The S3 recipe of docs/experiments.md: the endpoint in config, the credentials only in the
    environment (never in a file git sees)."""
    import boto3

    credentials = {
        "AWS_ACCESS_KEY_ID": "imgclf-test",
        "AWS_SECRET_ACCESS_KEY": "imgclf-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    user = Checkout(built.root, {**built.env, **credentials})
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        **{
            "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
            "region_name": credentials["AWS_DEFAULT_REGION"],
        },
    )
    s3.create_bucket(Bucket="imgclf")
    url = "s3://imgclf/store"
    add_remote(user, "s3", url, endpointurl=s3_endpoint)
    push(user, "s3", expected=status_names(built, pushed(built)))
    teammate = clone(user, tmp_path / "b")
    add_remote(teammate, "s3", url, endpointurl=s3_endpoint)
    pull(teammate, "s3", "--allow-missing")
    assert_same_files(built.root, teammate.root, [*paths(pushed(built)), LARGE])
    assert sorted(teammate.repro()) == REMADE_BY_CLONE  # predictions are not pushed
    assert_same_files(built.root, teammate.root, paths(pipeline_outputs(built.root)))
    assert "up to date" in teammate.dvc("status").stdout
    # Every object in the bucket has the MD5 its key says.
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="imgclf")
        for item in page.get("Contents", [])
    ]
    assert len(keys) >= len(pushed(built))
    for key in keys:
        body = s3.get_object(Bucket="imgclf", Key=key)["Body"].read()
        *_, prefix, rest = key.split("/")
        assert hashlib.md5(body).hexdigest() == prefix + rest.removesuffix(".dir"), key
    print(f"s3 remote: {len(keys)} objects verified")
