"""Fine-tuning phases freeze and unfreeze exactly what they claim; BatchNorm stays frozen."""

from pathlib import Path

import keras
import numpy as np
import pytest

from imgclf.errors import UserError
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


def test_backbone_of_needs_one_nested_model() -> None:
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(UserError, match="expected one nested backbone"):
        backbone_of(plain)
