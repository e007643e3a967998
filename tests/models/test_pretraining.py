"""Pretraining a backbone on a source folder: packs the source, trains, keeps the body."""

from pathlib import Path

import keras

from conftest import make_params, write_image_folder
from imgclf.models.architectures import BODY_OUTPUT
from imgclf.models.curves import read_curves
from imgclf.models.pretraining import pretrain_backbone


def test_pretrain_returns_a_trained_body(tmp_path: Path) -> None:
    source = write_image_folder(tmp_path / "source", per_class=10)
    base = make_params().backbone.pretrain
    params = type(base)(
        **{**base.__dict__, "source": str(source), "epochs": 2, "batch_size": 8, "val": 0.2}
    )
    body = pretrain_backbone(
        "minivggnet", (16, 16), params, seed=0, work=tmp_path / "work", curves=tmp_path / "c.csv"
    )
    assert body.layers[-1].name == BODY_OUTPUT and len(body.output_shape) == 4
    assert (tmp_path / "work/train.h5").exists() and (tmp_path / "work/val.h5").exists()
    assert read_curves(tmp_path / "c.csv")["epoch"].tolist() == [1, 2]
    body.save(tmp_path / "body.keras")
    assert (
        keras.models.load_model(tmp_path / "body.keras", safe_mode=True).output_shape
        == body.output_shape
    )
