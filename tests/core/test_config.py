"""params.yaml loading: every bad value stops with one line naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from imgclf.core.config import ConfigError, Params, load_params
from support import REPO
from support.params import make_params, repo_params_dict


def write_params(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def load_with(tmp_path: Path, section: str, **values: object) -> Params:
    raw = copy.deepcopy(repo_params_dict())
    raw[section].update(values)
    return load_params(write_params(tmp_path, raw))


def test_repo_params_load() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.base.image_size == (32, 32)
    assert params.data.labels == "folder"
    assert 0 < params.split.val < 1


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("split", {"val": 1.5}, "split.val = 1.5"),
        ("split", {"val": 0.0}, "split.val = 0.0"),
        ("split", {"val": -3}, "split.val = -3"),
        ("split", {"val": "abc"}, "split.val = 'abc'"),
        ("split", {"val": True}, "split.val = True"),
        ("split", {"val": 0.6, "test": 0.5}, "val + test < 1"),
        ("base", {"seed": 1.5}, "base.seed = 1.5"),
        ("base", {"seed": -1}, "base.seed = -1"),
        ("base", {"image_size": [32, 32, 3]}, "base.image_size"),
        ("base", {"image_size": 4}, "base.image_size = (4, 4)"),
        ("data", {"labels": "folders"}, "expected one of folder, filename, csv"),
        ("data", {"labels": "filename", "pattern": "^[^.]+"}, "(?P<label>...)"),
        ("data", {"labels": "filename", "pattern": "(?P<label>"}, "valid regex"),
        ("data", {"labels": "csv", "manifest": "../labels.csv"}, "inside data.source"),
        ("data", {"max_rejected": 2.0}, "data.max_rejected = 2.0"),
        ("pack", {"interpolation": "nearest"}, "pack.interpolation"),
        ("pack", {"batch_size": 0}, "pack.batch_size = 0"),
        ("distribute", {"strategy": "horovod"}, "expected one of default, mirrored, multi_worker"),
        ("cnn", {"crop": [40, 28]}, "cnn.crop = [40, 28] is not allowed; expected at most"),
        ("cnn", {"seeds": []}, "cnn.seeds = []"),
        ("export", {"model": "ensemble"}, "expected chosen, cnn/seed<N>, finetune or logreg"),
        ("export", {"model": "cnn/seed7"}, "a seed listed in cnn.seeds ([0, 1, 2])"),
        ("export", {"calibration_images": 0}, "export.calibration_images = 0"),
        ("backbone", {"weights": "imagenet"}, "backbone.pretrain.sources = ['data/sample/sou"),
        (
            "backbone",
            {"pretrain": {**repo_params_dict()["backbone"]["pretrain"], "sources": []}},
            "backbone.pretrain.sources = [] is not allowed; expected one folder",
        ),
        ("cnn", {"seeds": [1, 1]}, "distinct seeds"),
        (  # Keras's RandomShear refuses tan(angle) > 1: caught when params load, not in training
            "cnn",
            {"augment": {"rotation": 0, "shift": 0, "shear": 60, "zoom": 0}},
            "cnn.augment.shear = 60.0 is not allowed; expected a number >= 0 and <= 45",
        ),
        ("cnn", {"arch": "vgg99"}, "expected one of minivggnet, alexnet"),
        (
            "cnn",
            {"optimizer": {"name": "sgd", "lr": "fast", "momentum": 0.9, "nesterov": True}},
            "cnn.optimizer.lr = 'fast' is not allowed; expected a number",
        ),
        (
            "cnn",
            {"schedule": {"name": "step", "power": 1.0, "factor": 0.5}},
            "missing key cnn.schedule.every",
        ),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, section: str, values: dict, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_with(tmp_path, section, **values)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "params.yaml"))


def test_scientific_notation_strings_are_numbers(tmp_path: Path) -> None:
    """What PyYAML makes of an unquoted 1e-2, and what `dvc exp run -S` writes for 1.0e-6."""
    raw = copy.deepcopy(repo_params_dict())
    raw["data"]["max_rejected"] = "1e-2"
    raw["logreg"]["C"] = ["1e-06", 0.5, "2E+1"]
    params = load_params(write_params(tmp_path, raw))
    assert params.data.max_rejected == 0.01
    assert params.logreg.C == (1e-6, 0.5, 20.0)
    raw["data"]["max_rejected"] = "1e-2x"
    with pytest.raises(ConfigError, match=r"data\.max_rejected = '1e-2x' is not allowed"):
        load_params(write_params(tmp_path, raw))


def test_unknown_and_missing_keys(tmp_path: Path) -> None:
    raw = copy.deepcopy(repo_params_dict())
    raw["split"]["vall"] = 0.1
    with pytest.raises(ConfigError, match=r"unknown key split\.vall; allowed keys in split"):
        load_params(write_params(tmp_path, raw))
    del raw["split"]["vall"], raw["split"]["test"]
    with pytest.raises(ConfigError, match=r"missing key split\.test"):
        load_params(write_params(tmp_path, raw))
    raw = copy.deepcopy(repo_params_dict())
    raw["trian"] = {}
    with pytest.raises(ConfigError, match="unknown key trian"):
        load_params(write_params(tmp_path, raw))


def test_counts_stay_whole_numbers_and_fractions_floats(tmp_path: Path) -> None:
    params = load_with(tmp_path, "split", val=300, test=0.2)
    assert params.split.val == 300 and isinstance(params.split.val, int)
    assert params.split.test == 0.2 and isinstance(params.split.test, float)


def test_int_is_accepted_where_a_float_belongs(tmp_path: Path) -> None:
    params = load_with(tmp_path, "data", max_rejected=0)
    assert params.data.max_rejected == 0.0 and isinstance(params.data.max_rejected, float)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("base: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(broken)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_params(write_params(tmp_path, [1, 2]))


def test_params_are_frozen() -> None:
    params = make_params()
    with pytest.raises(AttributeError):
        params.split.val = 0.3  # type: ignore[misc]
