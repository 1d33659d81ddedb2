"""Bringing images to the square side a backbone takes (`data.image_size`, `data.image_fit`).

Three methods, each on uint8 (C, H, W) images, returning (C, size, size):

- ``pad``: zero-pads symmetrically (the extra row or column goes to the bottom/right);
  an image larger than the side is refused, since padding cannot shrink it.
- ``crop``: centre-crops what is larger than the side and zero-pads what is smaller.
- ``resize``: scales the shorter side to the side (bilinear, Pillow) and centre-crops
  the longer one, so the aspect ratio is kept.

An image already of the right size passes through unchanged with every method.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.errors import BtseeError

FIT_METHODS = ("pad", "crop", "resize")


class ImageFitError(BtseeError, ValueError):
    """An image cannot be brought to the side with the method asked for."""


@dataclass(frozen=True)
class ImageFit:
    """The target side in pixels and the method (one of FIT_METHODS)."""

    size: int
    method: str = "pad"

    def __post_init__(self) -> None:
        if self.method not in FIT_METHODS:
            raise ImageFitError(f"unknown image fit {self.method!r}; choose one of {list(FIT_METHODS)}")
        if self.size < 1:
            raise ImageFitError(f"image side must be positive, got {self.size}")


def _centre_crop(images: np.ndarray, size: int) -> np.ndarray:  # (..., H, W) -> (..., <=size, <=size)
    h, w = images.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return images[..., top:top + min(h, size), left:left + min(w, size)]


def _zero_pad(images: np.ndarray, size: int) -> np.ndarray:  # (..., <=size, <=size) -> (..., size, size)
    h, w = images.shape[-2:]
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros(images.shape[:-2] + (size, size), np.uint8)
    out[..., top:top + h, left:left + w] = images
    return out


def _resize_shorter_side(image: np.ndarray, size: int) -> np.ndarray:  # (C, H, W) -> (C, >=size, >=size)
    from PIL import Image

    _, h, w = image.shape
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    planes = [np.asarray(Image.fromarray(plane).resize((new_w, new_h), Image.BILINEAR))
              for plane in image]  # each (new_h, new_w)
    return np.stack(planes).astype(np.uint8)


def _crop_or_pad(images: np.ndarray, fit: ImageFit) -> np.ndarray:  # (..., H, W) -> (..., size, size)
    h, w = images.shape[-2:]
    if fit.method == "pad" and (h > fit.size or w > fit.size):
        raise ImageFitError(f"image of {h}x{w} is larger than data.image_size {fit.size}; "
                            "set data.image_fit to crop or resize")
    return _zero_pad(_centre_crop(images, fit.size), fit.size)


def fit_image(image: np.ndarray, fit: ImageFit) -> np.ndarray:
    """The uint8 (C, H, W) image as (C, fit.size, fit.size); raises ImageFitError for an
    image that `pad` would have to shrink."""
    if image.shape[-2:] == (fit.size, fit.size):
        return image
    if fit.method == "resize":
        image = _resize_shorter_side(image, fit.size)
    return _crop_or_pad(image, fit)


def fit_images(images: np.ndarray, fit: ImageFit) -> np.ndarray:
    """A uint8 (N, C, H, W) batch as (N, C, fit.size, fit.size)."""
    if images.shape[-2:] == (fit.size, fit.size):
        return images
    if fit.method == "resize":
        return np.stack([fit_image(im, fit) for im in images]) if len(images) else \
            np.zeros(images.shape[:2] + (fit.size, fit.size), np.uint8)
    return _crop_or_pad(images, fit)
