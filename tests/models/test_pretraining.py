"""Pretraining a backbone on packs of a source folder (made as the pretrain_index and pack
stages make them): trains, keeps the body, and writes its curves."""

from pathlib import Path

import keras

from imgclf.core.config import DataParams, PackParams
from imgclf.data.indexing import build_index
from imgclf.data.packing import pack_split
from imgclf.data.splitting import split_train_val
from imgclf.models.architectures import BODY_OUTPUT
from imgclf.models.curves import read_curves
from imgclf.models.pretraining import pretrain_backbone
from support.images import write_image_folder
from support.params import make_params


def pretraining_packs(source: Path, packs: Path, size: tuple[int, int]) -> None:
    folder = DataParams(str(source), "folder", "(?P<label>.+)", "labels.csv", 1.0, False)
    splits = split_train_val(build_index(folder).manifest, val=0.2, seed=0)
    for split in ("train", "val"):
        pack_split(splits, split, source, packs / f"{split}.h5", size, PackParams(8, "area"), 0, 1)


def test_pretrain_returns_a_trained_body(tmp_path: Path) -> None:
    pretraining_packs(write_image_folder(tmp_path / "source", per_class=10), tmp_path, (16, 16))
    base = make_params().backbone.pretrain
    params = type(base)(**{**base.__dict__, "epochs": 2, "batch_size": 8, "val": 0.2})
    body = pretrain_backbone(
        "minivggnet",
        (16, 16),
        params,
        seed=0,
        packs=tmp_path,
        work=tmp_path / "work",
        curves=tmp_path / "c.csv",
    )
    assert body.layers[-1].name == BODY_OUTPUT and len(body.output_shape) == 4
    assert read_curves(tmp_path / "c.csv")["epoch"].tolist() == [1, 2]
    body.save(tmp_path / "body.keras")
    assert (
        keras.models.load_model(tmp_path / "body.keras", safe_mode=True).output_shape
        == body.output_shape
    )
