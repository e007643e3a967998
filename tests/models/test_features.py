"""Features: pooled vectors of the right shape and dtype, in pack order, identical on rerun."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import PackReader, load_features
from imgclf.models.backbones import build_backbone
from imgclf.models.features import extract_features, feature_extractor
from support.packs import random_images, write_pack


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    labels = [i % 2 for i in range(11)]
    return write_pack(tmp_path / "p.h5", random_images(11, 16, 16), labels, ["a", "b"])


def test_features_are_pooled_float32_in_pack_order(pack: Path, tmp_path: Path) -> None:
    extractor = feature_extractor(build_backbone("minivggnet", (16, 16, 3), "none"))
    assert len(extractor.output_shape) == 2
    count = extract_features(
        extractor, pack, tmp_path / "f.h5", batch_size=4, attrs={"backbone": "minivggnet"}
    )
    features = load_features(tmp_path / "f.h5")
    with PackReader(pack) as reader:
        expected = extractor.predict(reader.images[:].astype(np.float32), verbose=0)
        assert (
            features.paths == reader.paths and features.labels.tolist() == reader.labels.tolist()
        )
    assert count == 11 and features.features.shape == (11, extractor.output_shape[-1])
    assert features.features.dtype == np.float32 and features.label_names == ["a", "b"]
    np.testing.assert_allclose(features.features, expected, rtol=1e-5, atol=1e-6)
    assert features.attrs["backbone"] == "minivggnet"


def test_rerun_gives_identical_bytes(pack: Path, tmp_path: Path) -> None:
    extractor = feature_extractor(build_backbone("minivggnet", (16, 16, 3), "none"))
    for name in ("a.h5", "b.h5"):
        extract_features(extractor, pack, tmp_path / name, batch_size=4)
    digests = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.h5", "b.h5")}
    assert len(digests) == 1


def test_backbone_size_must_match_the_pack(pack: Path, tmp_path: Path) -> None:
    extractor = feature_extractor(build_backbone("minivggnet", (24, 24, 3), "none"))
    with pytest.raises(UserError, match=r"the backbone takes \(24, 24\)"):
        extract_features(extractor, pack, tmp_path / "f.h5", batch_size=4)
    assert not (tmp_path / "f.h5").exists()
