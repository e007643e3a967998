"""Backbones by name: keras.applications bodies, their preprocessing, and their weights' source.

Every body takes raw RGB 0–255: the application's `preprocess_input` is rebuilt from Keras
layers inside the model, so a saved body loads with `safe_mode=True` and needs no reminder
downstream. It ends at the spatial feature map, named `BODY_OUTPUT` as in
imgclf.models.architectures.
"""

import contextlib
import logging
import os
import socket
import threading
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras

from imgclf.core.errors import UserError
from imgclf.models.architectures import ARCHITECTURES, BODY_OUTPUT, body_of, build_architecture
from imgclf.models.layers import ReverseChannels

log = logging.getLogger(__name__)

_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
# Mean BGR pixel of ImageNet, as keras.applications.imagenet_utils subtracts it in "caffe" mode.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# See keras.applications.efficientnet: Keras' ImageNet files store these stddevs squared as the
# Normalization variance and Keras divides once more by sqrt(stddev) when weights="imagenet".
_EFFICIENTNET_STDDEV_RGB = (0.229, 0.224, 0.225)
_MOBILENET_V2_SIDES = (96, 128, 160, 192, 224)
_PROBE_TIMEOUT_S = 3.0
_DOWNLOAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ApplicationSpec:
    """A keras.applications model: how to build it, feed it and fetch its ImageNet weights."""

    constructor: Callable[..., keras.Model]
    preprocessing: str  # "caffe": RGB→BGR, minus mean; "tf": to [-1, 1]; "none": in the model
    weights_url: str  # Keras' no-top ImageNet file; "{side}" where Keras has one per input size
    weights_md5: str | None  # as in the Keras source; Keras checks none for MobileNetV2
    default_size: tuple[int, int] = (224, 224)
    min_side: int = 32  # the smallest side keras.applications accepts with include_top=False


APPLICATIONS: dict[str, ApplicationSpec] = {
    "resnet50": ApplicationSpec(
        keras.applications.ResNet50,
        "caffe",
        _KERAS_URL + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "vgg16": ApplicationSpec(
        keras.applications.VGG16,
        "caffe",
        _KERAS_URL + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "mobilenet_v2": ApplicationSpec(
        keras.applications.MobileNetV2,
        "tf",
        _KERAS_URL + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{side}"
        "_no_top.h5",
        None,
    ),
    "efficientnet_b0": ApplicationSpec(
        keras.applications.EfficientNetB0,
        "none",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d",
    ),
}


def build_preprocessing(arch: str) -> list[keras.layers.Layer]:
    """Layers equal to `keras.applications.<arch>.preprocess_input` on raw RGB 0–255 input."""
    mode = _spec(arch).preprocessing
    if mode == "caffe":
        offset = [-mean for mean in _CAFFE_MEAN_BGR]
        return [
            ReverseChannels(name="rgb_to_bgr"),
            keras.layers.Rescaling(1.0, offset=offset, name="imagenet_mean"),
        ]
    if mode == "tf":
        return [keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")]
    return []


def imagenet_weights_url(arch: str, input_shape: tuple[int, int, int]) -> str:
    """Where Keras downloads `arch`'s no-top ImageNet weights for inputs of `input_shape`."""
    height, width = input_shape[:2]
    # MobileNetV2 has weights per input size and falls back to 224 (keras.applications' rule).
    side = height if height == width and height in _MOBILENET_V2_SIDES else 224
    return _spec(arch).weights_url.format(side=side)


def build_application_body(
    arch: str, input_shape: tuple[int, int, int], weights: str | Path | None
) -> keras.Model:
    """Raw RGB → `arch`'s preprocessing → its include_top=False body → `BODY_OUTPUT`.

    `weights`: "imagenet" (Keras cache, else download), a `.weights.h5` file saved from such a
    body, a legacy `.h5` file such as Keras' `*_notop.h5`, or None / "none" for random init.
    """
    spec = _spec(arch)
    _check_input_shape(arch, input_shape, spec.min_side)
    weights = _none_if_none(weights)
    if weights == "imagenet":
        weights = _imagenet_weights_file(arch, input_shape)
    path = None if weights is None else _existing_file(Path(weights), arch)
    legacy = path is not None and not path.name.endswith(".weights.h5")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for layer in build_preprocessing(arch):
        x = layer(x)
    with _load_errors_as_user_errors(path, arch):
        application = spec.constructor(
            include_top=False, weights=str(path) if legacy else None, input_tensor=x
        )
        # A legacy EfficientNet file is taken to be Keras' ImageNet file (or one alike).
        if legacy and arch.startswith("efficientnet"):
            _fold_efficientnet_stddev(application)
        body = keras.Model(
            inputs, keras.layers.Identity(name=BODY_OUTPUT)(application.output), name=arch
        )
        if path is not None and not legacy:
            body.load_weights(path)
    return body


def build_backbone(
    arch: str, input_shape: tuple[int, int, int], weights: str | Path | None
) -> keras.Model:
    """A body by name: a keras.applications model, or a from-scratch net of the book.

    From-scratch bodies take `weights` None / "none" or a `.weights.h5` file of the same body,
    and scale 0–255 to 0–1 themselves, so every backbone takes raw RGB.
    """
    if arch in APPLICATIONS:
        return build_application_body(arch, input_shape, weights)
    if arch not in ARCHITECTURES:
        allowed = ", ".join([*APPLICATIONS, *ARCHITECTURES])
        raise UserError(f"unknown backbone arch {arch!r}; choose one of: {allowed}")
    weights = _none_if_none(weights)
    if weights == "imagenet":
        raise UserError(f"backbone {arch!r} is built from scratch: it has no imagenet weights")
    to_unit = keras.layers.Rescaling(1.0 / 255.0, name="to_unit")
    # The head is dropped right away, so its class count does not matter.
    body = body_of(build_architecture(arch, input_shape, 2, preprocessing=[to_unit]))
    if weights is not None:
        path = _existing_file(Path(weights), arch)
        with _load_errors_as_user_errors(path, arch):
            body.load_weights(path)
    return body


def _none_if_none(weights: str | Path | None) -> str | Path | None:
    """params.yaml spells random init `none`; YAML's own null arrives as None."""
    return None if weights is None or str(weights).lower() == "none" else weights


def _spec(arch: str) -> ApplicationSpec:
    spec = APPLICATIONS.get(arch)
    if spec is None:
        allowed = ", ".join(APPLICATIONS)
        raise UserError(f"unknown keras.applications arch {arch!r}; choose one of: {allowed}")
    return spec


def _check_input_shape(arch: str, input_shape: tuple[int, int, int], min_side: int) -> None:
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise UserError(f"{arch}: input_shape must be (height, width, 3), got {input_shape}")
    if min(input_shape[:2]) < min_side:
        size = "×".join(str(side) for side in input_shape[:2])
        raise UserError(f"{arch} needs inputs of at least {min_side}×{min_side} px, got {size}")


def _existing_file(path: Path, arch: str) -> Path:
    if not path.is_file():
        raise UserError(f"backbone weights file for {arch} not found: {path}")
    if not path.name.endswith((".h5", ".hdf5")):
        raise UserError(f"weights file {path} for {arch}: expected .weights.h5 or legacy .h5")
    return path


@contextlib.contextmanager
def _load_errors_as_user_errors(path: Path | None, arch: str) -> Iterator[None]:
    """Turns Keras' long error for a weights file of another arch into one line naming both."""
    with warnings.catch_warnings():
        # A mismatching file also floods "Skipping nested container" warnings before the error.
        warnings.filterwarnings("ignore", message="Skipping nested container")
        try:
            yield
        except (ValueError, OSError) as error:
            if path is None:
                raise
            reason = str(error).strip().splitlines()[0].split(". ")[0]  # Keras' first sentence
            problem = f"{path} does not fit backbone {arch} (weights of another arch?)"
            raise UserError(f"{problem}: {reason}") from None


def _fold_efficientnet_stddev(application: keras.Model) -> None:
    """Give a model built from a legacy file what Keras adds only for weights="imagenet"."""
    normalization = next(
        layer for layer in application.layers if isinstance(layer, keras.layers.Normalization)
    )
    # (x - mean) / sqrt(var) / sqrt(std) == (x - mean) / sqrt(var * std): fold it in, no layer.
    stddev = keras.ops.convert_to_tensor(_EFFICIENTNET_STDDEV_RGB)
    normalization.adapt_variance.assign(normalization.adapt_variance * stddev)
    normalization.finalize_state()


def _keras_models_dir() -> Path:
    """Keras' download cache, by Keras' own rule (KERAS_HOME, ~/.keras, else /tmp/.keras)."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    if not os.access(home, os.W_OK):
        home = Path("/tmp/.keras")
    return home / "models"


def _imagenet_weights_file(arch: str, input_shape: tuple[int, int, int]) -> Path:
    """Keras' no-top ImageNet file for `arch`: from the cache, else downloaded, else one line."""
    url = imagenet_weights_url(arch, input_shape)
    name = url.rsplit("/", 1)[1]
    models_dir = _keras_models_dir()
    advice = (
        f"`dvc pull` the team's models/backbone.keras from its DVC remote, or on a machine with "
        f"internet download {name} from {url} and set backbone.weights to its path"
    )
    # Fail in seconds rather than after the OS's network timeouts.
    problem = None if (models_dir / name).is_file() else _unreachable(url)
    if problem:
        raise UserError(f"no ImageNet weights for {arch}, no network ({problem}); {advice}")
    log.info("ImageNet weights for %s: %s (Keras cache %s)", arch, name, models_dir)
    # urlretrieve has no timeout of its own; a stalled download must not hang the stage.
    default_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        path = keras.utils.get_file(
            name, url, cache_dir=str(models_dir.parent), cache_subdir="models",
            file_hash=_spec(arch).weights_md5,
        )  # fmt: skip
    except Exception as error:  # urllib, hash and OS errors: no file
        reason = f"download failed ({error})"
        raise UserError(f"no ImageNet weights for {arch}, {reason}; {advice}") from None
    finally:
        socket.setdefaulttimeout(default_timeout)
    return Path(path)


def _unreachable(url: str) -> str | None:
    """Why `url` cannot be reached within a few seconds, or None when it answers."""
    problems: list[str | None] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD")  # honours *_proxy variables
        try:
            with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_S):
                problems.append(None)
        except Exception as error:  # any failure: cannot download
            problems.append(str(getattr(error, "reason", error)))

    # A thread bounds DNS look-ups too, which ignore socket timeouts.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S + 1)
    return problems[0] if problems else f"no answer within {_PROBE_TIMEOUT_S:g} s"
