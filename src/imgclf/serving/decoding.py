"""The pack stage's image preparation as TensorFlow ops, for a SavedModel that takes encoded
image bytes: decode (JPEG at libjpeg's reduced size and turned by its EXIF orientation, PNG
with alpha composited on white), RGB, the aspect-aware centre crop and resize to the packed
size, rounded to uint8 as packs store it.

It mirrors `imgclf.data.imaging` (OpenCV) step by step; tests/serving/test_decoding.py
measures where the pixels agree (area shrinks, reduced JPEG decoding, transparency) and by how
much they do not (enlarging, linear, cubic: other kernels); docs/using.md lists the figures.
Only JPEG and PNG are read.
"""

from collections.abc import Callable

import tensorflow as tf

from imgclf.serving.orientation import apply_orientation, exif_orientation, swaps_sides

# pack.interpolation -> tf.image.resize method.
METHODS = {"area": "area", "linear": "bilinear", "cubic": "bicubic"}
_JPEG_MAGIC = b"\xff\xd8\xff"
_REDUCTIONS = (8, 4, 2)  # what libjpeg decodes directly, largest first


def pack_images(
    image_bytes: tf.Tensor, size: tuple[int, int], interpolation: str = "area"
) -> tf.Tensor:
    """(B, *size, 3) float32 0–255 from a (B,) string tensor of encoded JPEG/PNG files."""
    return tf.map_fn(
        lambda data: pack_image(data, size, interpolation),
        image_bytes,
        fn_output_signature=tf.TensorSpec((*size, 3), tf.float32),
    )


def pack_image(data: tf.Tensor, size: tuple[int, int], interpolation: str) -> tf.Tensor:
    """One encoded image as the pack stage stores it, as float32 (*size, 3)."""
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), _JPEG_MAGIC)
    image = tf.cond(is_jpeg, lambda: _decode_jpeg(data, size), lambda: _decode_png(data))
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left, crop_height, crop_width = _crop_box(height, width, size)
    cropped = tf.cast(image[top : top + crop_height, left : left + crop_width], tf.float32)
    resized = tf.image.resize(cropped, size, method=METHODS[interpolation])
    # Packs hold uint8: round halves up, as OpenCV's area shrink does (tf.round ties to even,
    # which left 12 % of a 2x shrink one level off), and saturate.
    return tf.cast(tf.saturate_cast(tf.floor(resized + 0.5), tf.uint8), tf.float32)


def _decode_jpeg(data: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """RGB at the largest reduction that keeps the image at least `size`, as the pack stage
    asks libjpeg for it (`imaging.jpeg_reduction`): the same pixels, not a resize of them;
    then turned by its EXIF orientation, as OpenCV turns it (the sizes are the turned ones)."""
    orientation = exif_orientation(data)
    shape = tf.image.extract_jpeg_shape(data)
    turned = swaps_sides(orientation)
    height = tf.where(turned, shape[1], shape[0])
    width = tf.where(turned, shape[0], shape[1])
    branches = []
    for factor in _REDUCTIONS:
        fits = tf.logical_and(
            -(-width // factor) >= size[1], -(-height // factor) >= size[0]
        )  # libjpeg's reduced side is ceil(side / factor)
        branches.append((fits, _jpeg_decoder(data, factor)))
    decoded = tf.case(branches, default=_jpeg_decoder(data, 1), exclusive=False)
    return apply_orientation(decoded, orientation)


def _jpeg_decoder(data: tf.Tensor, factor: int) -> Callable[[], tf.Tensor]:
    # libjpeg's accurate integer IDCT, which OpenCV uses (TensorFlow defaults to the fast one,
    # a few grey levels off on most pixels).
    return lambda: tf.io.decode_jpeg(data, channels=3, ratio=factor, dct_method="INTEGER_ACCURATE")


def _decode_png(data: tf.Tensor) -> tf.Tensor:
    """RGB from any PNG; transparency blended over white as `imaging` does, in integers."""
    rgba = tf.cast(tf.io.decode_png(data, channels=4), tf.int32)
    alpha, colour = rgba[..., 3:], rgba[..., :3]
    blended = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return tf.cast(blended, tf.uint8)


def _crop_box(
    height: tf.Tensor, width: tf.Tensor, size: tuple[int, int]
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(top, left, height, width) of `imaging.centre_crop_box`: the largest centred box with
    the aspect ratio of `size`, its side rounded half to even like Python's round()."""
    target_height, target_width = size
    height64, width64 = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    too_wide = width * target_height > height * target_width
    crop_width = tf.where(
        too_wide,
        tf.maximum(1, tf.cast(tf.round(height64 * target_width / target_height), tf.int32)),
        width,
    )
    crop_height = tf.where(
        too_wide,
        height,
        tf.maximum(1, tf.cast(tf.round(width64 * target_height / target_width), tf.int32)),
    )
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width
