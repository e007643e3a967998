"""Channel means of a pack: exact, streamed by chunk, saved and loaded as means.json."""

from pathlib import Path

import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import PackReader
from imgclf.data.means import channel_means, load_means, save_means
from support.packs import pack_folder


def test_channel_means_match_numpy(image_folder: Path, tmp_path: Path) -> None:
    pack_folder(image_folder, tmp_path / "train.h5")
    with PackReader(tmp_path / "train.h5") as reader:
        expected = reader.images[:].reshape(-1, 3).mean(axis=0)
    means = channel_means(tmp_path / "train.h5")
    assert list(means) == ["R", "G", "B"]
    np.testing.assert_allclose(list(means.values()), expected, rtol=1e-12)
    save_means(tmp_path / "means.json", means)
    np.testing.assert_allclose(load_means(tmp_path / "means.json"), expected, rtol=1e-6)


def test_bad_means_file(tmp_path: Path) -> None:
    (tmp_path / "means.json").write_text('{"R": 1.0, "G": "x"}')
    with pytest.raises(UserError, match="G, B"):
        load_means(tmp_path / "means.json")
