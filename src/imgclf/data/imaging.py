"""Decode image files to RGB uint8 and resize them the book's aspect-aware way.

Everything downstream sees one format: (H, W, 3) uint8 in RGB order. OpenCV decodes to BGR,
so the conversion happens here and nowhere else.
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from imgclf.data.hashing import perceptual_hash, pixel_hash

INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
# libjpeg can decode straight to 1/2, 1/4 or 1/8 size, skipping most of the work.
_JPEG_REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_JPEG_MAGIC = b"\xff\xd8\xff"
# Classic and BigTIFF, both byte orders.
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class ImageError(ValueError):
    """A file that cannot be turned into an image; the message is the reason."""


def read_image(path: Path | str, reduce: int = 1) -> np.ndarray:
    """Read an image file as (H, W, 3) RGB uint8, optionally decoded at 1/`reduce` size.

    Grayscale, palette, RGBA (composited on white), 16-bit and CMYK images all become 8-bit
    RGB. JPEG EXIF orientation is applied. `reduce` > 1 only speeds up JPEG decoding; other
    formats are decoded at full size.
    """
    return to_rgb(_read_native(path, reduce))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """RGB from OpenCV's native 8-bit order: one grey channel or BGR."""
    code = cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def _read_native(path: Path | str, reduce: int) -> np.ndarray:
    return _decode_native(_read_bytes(path), reduce)


def _read_bytes(path: Path | str) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageError(f"cannot read file ({error.strerror or error})") from None


def _decode_native(data: np.ndarray, reduce: int) -> np.ndarray:
    """8-bit grey (H, W) or BGR (H, W, 3): OpenCV's order, converted as late as possible."""
    if data.size == 0:
        raise ImageError("empty file")
    try:
        if data[:3].tobytes() == _JPEG_MAGIC:
            # JPEG has no alpha and no 16-bit; IMREAD_COLOR also converts CMYK and applies EXIF.
            image = cv2.imdecode(data, _JPEG_REDUCED.get(reduce, cv2.IMREAD_COLOR))
        else:
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. a header claiming more than CV_IO_MAX_IMAGE_PIXELS
        raise ImageError(f"not a decodable image ({error.err})") from None
    if image is None:
        raise ImageError("not a decodable image (unknown format or corrupt data)")
    # OpenCV reads 8-bit TIFFs through libtiff's RGBA interface, which premultiplies alpha.
    premultiplied = data[:4].tobytes() in _TIFF_MAGICS and image.dtype == np.uint8
    return _to_native8(image, premultiplied)


def _to_native8(image: np.ndarray, premultiplied: bool) -> np.ndarray:
    if image.dtype == np.uint16:
        # Round to nearest: 65535 maps to 255 exactly.
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {image.dtype} (expected 8 or 16 bits)")
    if image.ndim == 2 or image.shape[2] == 1:
        return image.reshape(image.shape[:2])
    if image.shape[2] == 4:
        return _composite_on_white(image, premultiplied)
    if image.shape[2] == 3:
        return image
    raise ImageError(f"unsupported number of channels: {image.shape[2]}")


def _composite_on_white(bgra: np.ndarray, premultiplied: bool = False) -> np.ndarray:
    """Blend BGRA over a white background, as a viewer shows a transparent image (BGR)."""
    alpha = bgra[:, :, 3:4].astype(np.uint32)
    colour = bgra[:, :, :3].astype(np.uint32)
    if premultiplied:  # colour already holds colour * alpha / 255
        blended = np.minimum(colour + (255 - alpha), 255)
    else:
        blended = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def jpeg_reduction(width: int, height: int, size: tuple[int, int]) -> int:
    """Largest JPEG decode reduction (1, 2, 4, 8) that keeps the image at least `size` (h, w).

    libjpeg's reduced output is ceil(side / factor), so the aspect-aware crop that follows
    never has to upsample.
    """
    target_height, target_width = size
    for factor in (8, 4, 2):
        if -(-width // factor) >= target_width and -(-height // factor) >= target_height:
            return factor
    return 1


def centre_crop_box(width: int, height: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest centred box with the aspect ratio of `size` (h, w)."""
    target_height, target_width = size
    if width * target_height > height * target_width:  # too wide: trim the sides
        crop_width, crop_height = max(1, round(height * target_width / target_height)), height
    else:  # too tall (or exact): trim top and bottom
        crop_width, crop_height = width, max(1, round(width * target_height / target_width))
    return (width - crop_width) // 2, (height - crop_height) // 2, crop_width, crop_height


def resize_aspect_aware(
    image: np.ndarray, size: tuple[int, int], interpolation: str = "area"
) -> np.ndarray:
    """Centre-crop to the aspect ratio of `size` (h, w), then resize to exactly `size`.

    The book (ch. 2) resizes the shorter side, crops, then resizes again to fix rounding;
    cropping first gives the same framing with one resample and never an off-by-one size.
    """
    height, width = image.shape[:2]
    x, y, crop_width, crop_height = centre_crop_box(width, height, size)
    cropped = image[y : y + crop_height, x : x + crop_width]
    target_height, target_width = size
    if cropped.shape[:2] == (target_height, target_width):
        return cropped.copy()  # never a view: it would alias the input and pin all of it
    return cv2.resize(
        cropped, (target_width, target_height), interpolation=INTERPOLATIONS[interpolation]
    )


def load_resized(
    path: Path | str, size: tuple[int, int], interpolation: str = "area", reduce: int = 1
) -> np.ndarray:
    """Read `path` and return it aspect-aware resized to `size` (h, w) as RGB uint8.

    Resizing happens in the decoder's own channel order (one channel for grey images) and
    the RGB conversion after it, on the small image: the same pixels, less work.
    """
    return to_rgb(resize_aspect_aware(_read_native(path, reduce), size, interpolation))


def load_like_pack(path: Path | str, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """`path` exactly as the pack stage stores it, without its size known beforehand.

    pack decodes a JPEG at the reduction that the size recorded by `index` allows; here the
    size comes from a full decode, and a JPEG is decoded again at that reduction.
    """
    data = _read_bytes(path)
    image = _decode_native(data, 1)
    reduce = jpeg_reduction(image.shape[1], image.shape[0], size)
    if reduce > 1 and data[:3].tobytes() == _JPEG_MAGIC:
        image = _decode_native(data, reduce)
    return to_rgb(resize_aspect_aware(image, size, interpolation))


class ChangedError(ImageError):
    """A file whose bytes are no longer those that `index` hashed."""


def content_hash(data: np.ndarray) -> str:
    """The MD5 of a file's bytes, as `index` records it (and as DVC hashes files)."""
    return hashlib.md5(data).hexdigest()


def load_batch(
    tasks: Sequence[tuple[str, int, str]], size: tuple[int, int], interpolation: str
) -> np.ndarray:
    """(n, *size, 3) uint8 RGB from (path, JPEG reduction, content hash) tasks: a worker's
    unit of work. Raises ImageError naming the file that failed, ChangedError if its bytes
    differ from the hash."""
    images = np.empty((len(tasks), *size, 3), dtype=np.uint8)
    for index, (path, reduce, expected) in enumerate(tasks):
        try:
            data = _read_bytes(path)
            if content_hash(data) != expected:
                raise ChangedError("its content changed after `index` read it")
            image = resize_aspect_aware(_decode_native(data, reduce), size, interpolation)
            images[index] = to_rgb(image)
        except ImageError as error:
            raise type(error)(f"{path}: {error}") from None
    return images


def image_facts(paths: Sequence[str]) -> list[tuple[int, int, str, str, str] | str]:
    """(width, height, content hash, pixel hash, perceptual hash) of each image, from one
    read and one decode of the file, or the reason it cannot be used."""
    facts: list[tuple[int, int, str, str, str] | str] = []
    for path in paths:
        try:
            data = _read_bytes(path)
            image = _decode_native(data, 1)
            height, width = image.shape[:2]
            facts.append(
                (width, height, content_hash(data), pixel_hash(image), perceptual_hash(image))
            )
        except ImageError as error:
            facts.append(str(error))
    return facts
