"""The from-scratch architectures: shapes, heads, L2 placement, preprocessing, training, saving."""

from pathlib import Path

import keras
import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.models.architectures import (
    ARCHITECTURES,
    BODY_OUTPUT,
    MIN_INPUT_SIDES,
    alexnet,
    body_of,
    build_architecture,
    minigooglenet,
    minivggnet,
    resnet,
)
from imgclf.models.architectures._common import output_side

CLASSES = 3
L2 = 5.0e-4
MEAN = 100.0
NAMES = tuple(ARCHITECTURES)
# Small inputs that every architecture accepts; AlexNet's strides need at least 57 px.
SHAPES = {
    "minivggnet": (32, 32, 3),
    "alexnet": (64, 64, 3),
    "minigooglenet": (32, 32, 3),
    "resnet": (32, 32, 3),
}
# Conv and dense kernels per model, all carrying L2 when l2 > 0.
REGULARIZED_KERNELS = {
    "minivggnet": 4 + 2,
    "alexnet": 5 + 3,
    "minigooglenet": 1 + 8 * 2 + 2 + 1,  # stem, 8 two-branch inceptions, 2 downsamples, classifier
    # stem + 3 stages × 3 modules × 3 convs + 3 projections + classifier: the residual-module
    # convs carry the requested L2, not the book's silent default (erratum E12).
    "resnet": 1 + 3 * 3 * 3 + 3 + 1,
}
SPATIAL_OPS = {
    "minivggnet": minivggnet.SPATIAL_OPS,
    "alexnet": alexnet.SPATIAL_OPS,
    "minigooglenet": minigooglenet.SPATIAL_OPS,
    "resnet": resnet.spatial_ops((3, 3, 3), "cifar"),
}


def mean_subtraction() -> keras.layers.Layer:
    return keras.layers.Normalization(mean=[MEAN] * 3, variance=[1.0] * 3)


def images(shape: tuple[int, int, int], count: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, *shape)).astype(np.float32)


def run(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(autouse=True)
def seeded() -> None:
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module", params=NAMES)
def model(request: pytest.FixtureRequest) -> keras.Model:
    """Each architecture with L2 and a mean-subtraction layer, as the training stage builds it."""
    keras.utils.set_random_seed(0)
    name = request.param
    preprocessing = [mean_subtraction()]
    return build_architecture(name, SHAPES[name], CLASSES, l2=L2, preprocessing=preprocessing)


def test_softmax_head_over_the_classes(model: keras.Model) -> None:
    assert model.name in ARCHITECTURES
    assert model.output.shape == (None, CLASSES)
    assert model.layers[-1].name == "predictions"
    probabilities = run(model, images(model.input.shape[1:]))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_body_is_a_feature_map_that_keeps_the_preprocessing(model: keras.Model) -> None:
    features = model.get_layer(BODY_OUTPUT).output
    assert len(features.shape) == 4
    body = body_of(model)
    assert body.output.shape == features.shape
    assert isinstance(body.layers[1], keras.layers.Normalization)
    assert run(body, images(model.input.shape[1:])).shape[1:] == features.shape[1:]


def test_l2_reaches_every_conv_and_dense_kernel(model: keras.Model) -> None:
    kernel_layers = keras.layers.Conv2D | keras.layers.Dense
    kernels = [layer for layer in model.layers if isinstance(layer, kernel_layers)]
    assert len(kernels) == REGULARIZED_KERNELS[model.name]
    for layer in kernels:
        assert isinstance(layer.kernel_regularizer, keras.regularizers.L2), layer.name
        assert layer.kernel_regularizer.l2 == pytest.approx(L2), layer.name
    assert len(model.losses) == len(kernels)


@pytest.mark.parametrize("name", NAMES)
def test_preprocessing_runs_first_and_no_l2_means_no_losses(name: str) -> None:
    with_mean = build_architecture(name, SHAPES[name], CLASSES, preprocessing=[mean_subtraction()])
    plain = build_architecture(name, SHAPES[name], CLASSES)
    assert isinstance(with_mean.layers[1], keras.layers.Normalization)
    assert not plain.losses
    plain.set_weights(with_mean.get_weights())
    x = images(SHAPES[name])
    np.testing.assert_allclose(run(with_mean, x + MEAN), run(plain, x), rtol=1e-4, atol=1e-6)
    # Softmax can saturate on raw pixels, so compare the features to see the shift matters.
    assert not np.allclose(run(body_of(with_mean), x), run(body_of(plain), x), atol=1e-3)


def test_trains_one_step_and_round_trips_through_a_keras_file(
    model: keras.Model, tmp_path: Path
) -> None:
    x = images(model.input.shape[1:])
    y = keras.utils.to_categorical(np.arange(len(x)) % CLASSES, CLASSES)
    model.compile(keras.optimizers.SGD(learning_rate=0.01), loss="categorical_crossentropy")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(run(loaded, x), run(model, x))
    assert body_of(loaded).output.shape == body_of(model).output.shape


@pytest.mark.parametrize(
    ("name", "side", "body_shape"),
    [
        ("minivggnet", 32, (8, 8, 64)),
        ("alexnet", 227, (6, 6, 256)),  # Table 10.1's final 6×6×256 (9216 after Flatten)
        ("minigooglenet", 32, (7, 7, 336)),  # the book's 7×7×336 (L5198)
        ("resnet", 32, (8, 8, 64)),  # the 8×8 map the book's AvgPool(8×8) expects
    ],
)
def test_body_shapes_match_the_book(name: str, side: int, body_shape: tuple[int, ...]) -> None:
    model = build_architecture(name, (side, side, 3), 10)
    assert body_of(model).output.shape[1:] == body_shape
    assert output_side(side, SPATIAL_OPS[name]) == body_shape[0]


@pytest.mark.parametrize("name", ["minivggnet", "alexnet", "minigooglenet"])
def test_minimum_input_side_is_exact(name: str) -> None:
    side = MIN_INPUT_SIDES[name]
    smallest = build_architecture(name, (side, side + 5, 3), CLASSES)
    assert body_of(smallest).output.shape[1:3] == (1, output_side(side + 5, SPATIAL_OPS[name]))
    with pytest.raises(UserError, match=f"{name} needs inputs of at least {side}×{side} pixels"):
        build_architecture(name, (side + 5, side - 1, 3), CLASSES)


def test_alexnet_needs_57_pixels() -> None:
    # 56 → 14 (conv /4) → 6 → 2 after two pools: the third 3×3 pool no longer fits.
    assert MIN_INPUT_SIDES["alexnet"] == 57
    with pytest.raises(UserError, match="at least 57×57"):
        build_architecture("alexnet", (32, 32, 3), CLASSES)


def test_resnet_options_and_tiny_imagenet_stem() -> None:
    model = resnet.build_resnet(
        (64, 64, 3), CLASSES, l2=L2, stages=(2, 1), filters=(8, 8, 16), stem="tiny_imagenet"
    )
    assert body_of(model).output.shape[1:] == (16, 16, 16)  # 64 → pool 32 → stage 2 → 16
    regularized = [layer for layer in model.layers if getattr(layer, "kernel_regularizer", None)]
    assert len(regularized) == 1 + 3 * 3 + 2 + 1
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {(layer.epsilon, layer.momentum) for layer in norms} == {(2e-5, 0.9)}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stages": (3, 3), "filters": (16, 16, 32, 64)}, "one entry for the stem"),
        ({"filters": (16, 16, 30, 64)}, "multiples of 4"),
        ({"stages": (3, 0, 3)}, "module counts >= 1"),
        ({"stem": "imagenet"}, "choose one of: cifar, tiny_imagenet"),
    ],
)
def test_resnet_rejects_bad_options(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        resnet.build_resnet((32, 32, 3), CLASSES, **options)


def test_unknown_name_lists_the_allowed_ones() -> None:
    with pytest.raises(UserError, match="'vgg16'") as error:
        build_architecture("vgg16", (32, 32, 3), CLASSES)
    assert all(name in str(error.value) for name in NAMES)


@pytest.mark.parametrize(
    ("shape", "classes", "l2", "message"),
    [
        ((32, 32), 3, 0.0, "input_shape"),
        ((32, 32, 3), 0, 0.0, "classes must be at least 1"),
        ((32, 32, 3), 3, -1.0, "l2 must be >= 0"),
    ],
)
def test_bad_common_arguments(shape: tuple, classes: int, l2: float, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_architecture("minivggnet", shape, classes, l2=l2)


def test_body_of_needs_a_body_output_layer() -> None:
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
    with pytest.raises(UserError, match="no layer named 'body_output'"):
        body_of(keras.Model(inputs, outputs, name="other"))
