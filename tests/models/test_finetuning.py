"""Fine-tuning phases freeze and unfreeze exactly what they claim; BatchNorm stays frozen."""

import functools
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgclf.core.errors import UserError
from imgclf.data.inputs import evaluation_dataset, training_dataset
from imgclf.models import finetuning
from imgclf.models.backbones import build_backbone
from imgclf.models.finetuning import (
    backbone_of,
    build_finetune_model,
    freeze_backbone,
    leaf_layers,
    unfreeze_top,
)
from imgclf.models.predicting import load_keras_model
from imgclf.models.training import compile_classifier
from support.models import stop_at
from support.packs import tiny_pack, tiny_pack_card
from support.params import make_params


def model_on(arch: str = "minivggnet", size: int = 16) -> keras.Model:
    backbone = build_backbone(arch, (size, size, 3), "none")
    return build_finetune_model(backbone, 3, pooling="avg", hidden=8, dropout=0.5)


def head_weights(model: keras.Model) -> int:
    return sum(
        len(model.get_layer(name).trainable_weights) for name in ("head_dense", "predictions")
    )


def test_warmup_trains_only_the_head() -> None:
    model = model_on()
    freeze_backbone(model)
    assert len(model.trainable_weights) == head_weights(model) == 4


def test_unfreeze_top_layers_except_batchnorm() -> None:
    model = model_on()
    freeze_backbone(model)
    leaves = leaf_layers(backbone_of(model))
    names = unfreeze_top(model, 6)
    expected = [
        layer
        for layer in leaves[-6:]
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert names == [layer.name for layer in expected] and names  # the last conv layers
    backbone_weights = sum(len(layer.trainable_weights) for layer in expected)
    assert len(model.trainable_weights) == head_weights(model) + backbone_weights
    assert not any(
        layer.trainable for layer in leaves if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert unfreeze_top(model, 0) == []
    assert len(model.trainable_weights) == head_weights(model)


def test_nested_application_bodies_unfreeze_by_leaf_layer() -> None:
    model = model_on("mobilenet_v2", 32)
    names = unfreeze_top(model, 10)
    assert names and all(
        name in {layer.name for layer in leaf_layers(backbone_of(model))} for name in names
    )


@pytest.mark.parametrize("reloaded", [False, True])
def test_training_leaves_frozen_layers_and_batchnorm_statistics_alone(
    reloaded: bool, tmp_path: Path
) -> None:
    model = model_on()
    if reloaded:  # phase 2 starts from the saved warm-up model
        model.save(tmp_path / "warmup.keras")
        model = load_keras_model(tmp_path / "warmup.keras")
    unfreeze_top(model, 6)
    compile_classifier(model, keras.optimizers.SGD(0.1))
    backbone = backbone_of(model)
    before = {
        layer.name: [w.numpy().copy() for w in layer.weights]
        for layer in leaf_layers(backbone)
        if layer.weights
    }
    images = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    model.fit(images, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    for layer in leaf_layers(backbone):
        if not layer.weights:
            continue
        changed = any(
            not np.array_equal(old, new.numpy())
            for old, new in zip(before[layer.name], layer.weights, strict=True)
        )
        assert changed == layer.trainable, layer.name


@pytest.mark.parametrize("unfrozen", [0, 4])
def test_the_body_runs_in_inference_mode_while_the_model_trains(unfrozen: int) -> None:
    """With the head's dropout at 0, a training-mode call equals an inference-mode one: the
    body's own Dropout (rate 0.9 here) does not run, in the warm-up or after unfreezing."""
    inputs = keras.Input((8, 8, 3))
    maps = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    body = keras.Model(inputs, keras.layers.Dropout(0.9, name="body_dropout")(maps))
    model = build_finetune_model(body, 3, pooling="avg", hidden=4, dropout=0.0)
    freeze_backbone(model)
    unfreeze_top(model, unfrozen)
    images = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    trained, inferred = model(images, training=True), model(images, training=False)
    np.testing.assert_allclose(np.asarray(trained), np.asarray(inferred), rtol=1e-6)
    # The same weights and layer names as the body it was given.
    copy = backbone_of(model)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in body.layers]
    for mine, theirs in zip(copy.get_weights(), body.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_backbone_of_needs_one_nested_model() -> None:
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(UserError, match="expected one nested backbone"):
        backbone_of(plain)


def test_a_run_killed_in_phase_two_resumes_there_with_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up is not trained again: its state outlives it until phase 2 is done."""
    pack = tiny_pack(tmp_path / "pack.h5")
    inputs = keras.Input((6, 6, 3), name="image")
    maps = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    body = keras.Model(inputs, keras.layers.Dropout(0.5, name="drop")(maps), name="body")
    body.save(tmp_path / "body.keras")
    params = make_params(
        finetune={"warmup_epochs": 2, "epochs": 3, "unfreeze": 2, "hidden": 4, "pooling": "avg"}
    ).finetune
    fitted: list[tuple[str, int]] = []
    real_fit = finetuning.fit_with_strategy

    def fit(*args: object, stop: int | None = None, **options: object) -> int:
        phase = "warm-up" if options["paths"].model.name.endswith(".warmup.keras") else "phase 2"
        if phase == "phase 2" and stop is not None:
            options["callbacks"] = [stop_at(stop)]
        fitted.append((phase, real_fit(*args, **options)))
        return fitted[-1][1]

    def tune(folder: Path, stop: int | None = None) -> Path:
        monkeypatch.setattr(finetuning, "fit_with_strategy", functools.partial(fit, stop=stop))
        keras.utils.set_random_seed(0)
        finetuning.finetune_two_phases(
            tf.distribute.get_strategy(),
            tmp_path / "body.keras",
            functools.partial(training_dataset, pack, batch_size=8, seed=0, crop=(6, 6)),
            evaluation_dataset(pack, batch_size=8),
            params,
            classes=2,
            steps_per_epoch=5,
            model_path=folder / "finetune.keras",
            curves=folder,
            run_id="run-a",
            card=tiny_pack_card("finetune", (6, 6)),
        )
        return folder / "finetune.keras"

    whole = tune(tmp_path / "whole")
    fitted.clear()
    with pytest.raises(KeyboardInterrupt):
        tune(tmp_path / "killed", stop=1)  # after phase 2's first epoch
    assert fitted == [("warm-up", 2)]
    fitted.clear()
    resumed = tune(tmp_path / "killed")
    assert fitted == [("warm-up", 0), ("phase 2", 2)]
    assert resumed.read_bytes() == whole.read_bytes()
