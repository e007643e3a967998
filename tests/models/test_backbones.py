"""Tests for imgclf.models.backbones: in-model preprocessing, weight sources and their errors."""

from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.applications import efficientnet as keras_efficientnet

from imgclf.core.errors import UserError
from imgclf.models import backbones
from imgclf.models.architectures import BODY_OUTPUT

SHAPE = (32, 32, 3)
KERAS_PREPROCESS = {
    "resnet50": keras.applications.resnet50.preprocess_input,
    "vgg16": keras.applications.vgg16.preprocess_input,
    "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
    "efficientnet_b0": keras.applications.efficientnet.preprocess_input,
}


def raw_images(count: int = 2, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Random RGB images in 0–255, as float32 like the pipeline feeds them."""
    return np.random.default_rng(0).uniform(0, 255, (count, *shape)).astype("float32")


def features(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(images, training=False))


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache and a proxy that refuses connections: offline even with internet."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for name in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "models"


def test_registry_covers_the_common_applications() -> None:
    assert {"resnet50", "vgg16", "mobilenet_v2", "efficientnet_b0"} <= set(backbones.APPLICATIONS)
    assert all(spec.default_size == (224, 224) for spec in backbones.APPLICATIONS.values())


@pytest.mark.parametrize("arch", sorted(KERAS_PREPROCESS))
def test_body_takes_raw_rgb_and_ends_at_body_output(arch: str) -> None:
    body = backbones.build_application_body(arch, SHAPE, None)
    assert body.input.shape == (None, *SHAPE)
    assert body.layers[-1].name == BODY_OUTPUT
    assert len(body.output.shape) == 4
    assert np.isfinite(features(body, raw_images())).all()


@pytest.mark.parametrize("arch", sorted(KERAS_PREPROCESS))
def test_in_model_preprocessing_equals_keras_preprocess_input(arch: str) -> None:
    body = backbones.build_application_body(arch, SHAPE, None)
    ours = backbones.build_preprocessing(arch)
    images = raw_images()
    expected = KERAS_PREPROCESS[arch](images.copy())
    if not ours:
        # EfficientNet rescales inside the application: nothing of ours, and Keras' is identity.
        np.testing.assert_array_equal(expected, images)
        assert isinstance(body.layers[1], keras.layers.Rescaling)
        return
    # The tensor the application sees, read from the built body itself.
    preprocessed = keras.Model(body.input, body.get_layer(ours[-1].name).output)
    np.testing.assert_allclose(features(preprocessed, images), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ["vgg16", "mobilenet_v2", "efficientnet_b0"])
def test_saved_body_loads_in_safe_mode(arch: str, tmp_path: Path) -> None:
    body = backbones.build_application_body(arch, SHAPE, None)
    body.save(tmp_path / "backbone.keras")
    loaded = keras.models.load_model(tmp_path / "backbone.keras", safe_mode=True)
    images = raw_images()
    np.testing.assert_array_equal(features(loaded, images), features(body, images))


def test_weights_file_rebuilds_the_same_body(tmp_path: Path) -> None:
    body = backbones.build_application_body("mobilenet_v2", SHAPE, None)
    body.save_weights(tmp_path / "b.weights.h5")
    rebuilt = backbones.build_application_body("mobilenet_v2", SHAPE, tmp_path / "b.weights.h5")
    images = raw_images()
    np.testing.assert_array_equal(features(rebuilt, images), features(body, images))


@pytest.mark.parametrize("name", ["b.weights.h5", "legacy.h5"])
def test_weights_file_of_another_arch_is_one_line(name: str, tmp_path: Path) -> None:
    body = backbones.build_application_body("mobilenet_v2", SHAPE, None)
    if name.endswith(".weights.h5"):
        body.save_weights(tmp_path / name)
    else:
        body.save(tmp_path / name)
    with pytest.raises(UserError, match=rf"{name}.*resnet50"):
        backbones.build_application_body("resnet50", SHAPE, tmp_path / name)


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.weights\.h5"):
        backbones.build_application_body("vgg16", SHAPE, tmp_path / "nope.weights.h5")


def test_legacy_notop_file_loads_like_keras_does(tmp_path: Path) -> None:
    # Keras 3 writes legacy .h5 only as a whole model; load_weights reads its weights alike.
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=SHAPE)
    source.save(tmp_path / "notop.h5")
    body = backbones.build_application_body("mobilenet_v2", SHAPE, tmp_path / "notop.h5")
    images = raw_images()
    expected = features(source, keras.applications.mobilenet_v2.preprocess_input(images.copy()))
    np.testing.assert_allclose(features(body, images), expected, atol=1e-5)


def test_efficientnet_legacy_file_matches_keras_imagenet_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keras adds a stddev Rescaling only for weights="imagenet": a file path must give the same.
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=SHAPE)
    normalization = next(
        layer for layer in source.layers if isinstance(layer, keras.layers.Normalization)
    )
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign(np.square([0.229, 0.224, 0.225]))
    notop = tmp_path / "efficientnetb0_notop.h5"
    source.save(notop)
    # Stand in for the download inside keras.applications (private, so pinned to this test).
    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", lambda *a, **k: str(notop))
    keras_model = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=SHAPE
    )
    body = backbones.build_application_body("efficientnet_b0", SHAPE, notop)
    stem = "stem_conv_pad"  # right after the input normalisation, before random-weight layers
    images = raw_images()
    expected = features(keras.Model(keras_model.input, keras_model.get_layer(stem).output), images)
    ours = features(keras.Model(body.input, body.get_layer(stem).output), images)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_imagenet_offline_fails_fast_with_guidance(offline: Path) -> None:
    with pytest.raises(UserError) as caught:
        backbones.build_application_body("resnet50", SHAPE, "imagenet")
    message = str(caught.value)
    assert "\n" not in message
    assert "no network" in message and "dvc pull" in message and "backbone.weights" in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message


def test_imagenet_uses_the_keras_cache_offline(offline: Path) -> None:
    url = backbones.imagenet_weights_url("mobilenet_v2", SHAPE)
    assert url.endswith("_1.0_224_no_top.h5")  # Keras' fallback for sizes it has no file for
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=SHAPE)
    offline.mkdir(parents=True)
    source.save(offline / url.rsplit("/", 1)[1])
    body = backbones.build_application_body("mobilenet_v2", SHAPE, "imagenet")
    images = raw_images()
    expected = features(source, keras.applications.mobilenet_v2.preprocess_input(images.copy()))
    np.testing.assert_allclose(features(body, images), expected, atol=1e-5)


def test_unknown_arch_and_small_input_are_user_errors() -> None:
    with pytest.raises(UserError, match=r"resnet50.*minivggnet"):
        backbones.build_backbone("resnet5", SHAPE, None)
    with pytest.raises(UserError, match="at least 32×32"):
        backbones.build_application_body("vgg16", (16, 16, 3), None)


def test_from_scratch_backbone_round_trips_its_weights(tmp_path: Path) -> None:
    body = backbones.build_backbone("minivggnet", SHAPE, "none")
    assert body.get_layer(BODY_OUTPUT) is body.layers[-1]
    body.save_weights(tmp_path / "b.weights.h5")
    rebuilt = backbones.build_backbone("minivggnet", SHAPE, tmp_path / "b.weights.h5")
    images = raw_images()
    np.testing.assert_array_equal(features(rebuilt, images), features(body, images))
    with pytest.raises(UserError, match="no imagenet weights"):
        backbones.build_backbone("minivggnet", SHAPE, "imagenet")
