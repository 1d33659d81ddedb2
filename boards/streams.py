"""The byte layout of the design's DMA streams, and checks of the images sent into it.

Images go in as pixel words: the image in NHWC order, `elems` pixel codes of `bits` bits
per word, value i at bits [i*bits, (i+1)*bits) (FINN's stream convention), each word
padded to the DMA's width and stored little-endian (AXI DMA puts byte 0 of memory on
TDATA[7:0]). Decisions come back one word per image: the class in the low `class_bits`
bits, the exit index above them.

Packing uses finn-plus-driver's `finn_plus_driver.packing` where it is importable (it needs
qonnx, which needs onnx: often missing on a 32-bit ARM board); otherwise the numpy packing
below, which tests check is byte for byte the same. `default_packing()` names the one in
use. numpy only otherwise, and finn-plus-driver is imported on first use only: it runs on
the board.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from calib.errors import BtseeError

FINN_PACKING = "finn_plus_driver.packing"
NUMPY_PACKING = "numpy"


@lru_cache(maxsize=1)
def _finn_packing() -> tuple[tuple | None, str]:
    """((pack, unpack, DataType) of finn-plus-driver, its name), or (None, why not)."""
    try:  # optional on the board: the finn-plus board runtime, with qonnx's DataType
        from finn_plus_driver.packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
        from qonnx.core.datatype import DataType
    except ImportError as e:
        return None, f"{NUMPY_PACKING} (finn_plus_driver.packing is not importable: {e})"
    return (finnpy_to_packed_bytearray, packed_bytearray_to_finnpy, DataType), FINN_PACKING


def default_packing() -> str:
    """FINN_PACKING when finn-plus-driver is importable, else the numpy packing and why."""
    return _finn_packing()[1]


class StreamError(BtseeError):
    """Images or buffers that do not fit the design's streams; says which and why."""


@dataclass(frozen=True)
class StreamLayout:
    image_shape: tuple[int, int, int]
    """(C, H, W) of one image."""
    elems: int
    """Pixel codes per input word."""
    bits: int
    """Bits per pixel code."""
    signed: bool
    words_per_image: int
    in_bytes: int
    """Bytes per input word on the DMA (its width / 8)."""
    class_bits: int
    exits: int
    """Early exits; exit index `exits` is the final classifier."""
    classes: int
    out_bytes: int
    """Bytes per decision word on the DMA."""

    @classmethod
    def from_driver(cls, driver: dict, where: str) -> StreamLayout:
        """The layout in a package's driver.json; a missing field is a StreamError naming it."""
        try:
            i, o = driver["input"], driver["output"]
            layout = cls(tuple(i["image_shape"]), i["elems"], i["bits"], i["signed"], i["words_per_image"],
                         i["dma_bytes"], o["class_bits"], o["exits"], o["classes"], o["dma_bytes"])
        except (KeyError, TypeError) as e:
            raise StreamError(f"{where}: field {e} is missing from the stream description") from e
        c, h, w = layout.image_shape
        if c * h * w != layout.elems * layout.words_per_image:
            raise StreamError(f"{where}: an image of {layout.image_shape} is not {layout.words_per_image} words "
                              f"of {layout.elems} pixels")
        if layout.in_bytes * 8 < layout.elems * layout.bits:
            raise StreamError(f"{where}: input.dma_bytes {layout.in_bytes} cannot hold {layout.elems} x "
                              f"{layout.bits} bits")
        return layout

    @property
    def max_code(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def min_code(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0


def check_images(images: object, layout: StreamLayout) -> np.ndarray:
    """`images` as (N, C, H, W) codes the design accepts, or a StreamError saying what is wrong."""
    if not isinstance(images, np.ndarray):
        raise StreamError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype.kind not in "iu":
        raise StreamError(f"images must hold integer pixel codes (dtype uint8 for 8-bit pixels), got dtype "
                          f"{images.dtype}")
    if images.ndim != 4 or tuple(images.shape[1:]) != layout.image_shape:
        raise StreamError(f"images must be (N, {', '.join(map(str, layout.image_shape))}) (N, C, H, W), got "
                          f"{images.shape}")
    if len(images) == 0:
        raise StreamError("no images: the batch is empty")
    low, high = int(images.min()), int(images.max())
    if low < layout.min_code or high > layout.max_code:
        raise StreamError(f"pixel codes must lie in [{layout.min_code}, {layout.max_code}] ({layout.bits}-bit "
                          f"{'signed' if layout.signed else 'unsigned'}), got [{low}, {high}]")
    return images


def image_words(images: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """(N, C, H, W) -> (N * words_per_image, elems) pixel codes in stream order (NHWC)."""
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)).reshape(-1, layout.elems)


def _bits_to_bytes(values: np.ndarray, bits: int, nbytes: int) -> np.ndarray:
    """(M, k) integers -> (M, nbytes) uint8: value i at bits [i*bits, (i+1)*bits), little-endian."""
    v = values.astype(np.int64) & ((1 << bits) - 1)  # two's complement of `bits` bits
    planes = (v[..., None] >> np.arange(bits)) & 1  # (M, k, bits), LSB first
    flat = planes.reshape(len(v), -1).astype(np.uint8)  # (M, k * bits)
    flat = np.pad(flat, ((0, 0), (0, nbytes * 8 - flat.shape[1])))
    return np.packbits(flat, axis=1, bitorder="little")  # (M, nbytes)


def _bytes_to_bits(buffer: np.ndarray, k: int, bits: int, signed: bool) -> np.ndarray:
    """(M, nbytes) uint8 -> (M, k) int64: the inverse of _bits_to_bytes."""
    flat = np.unpackbits(buffer, axis=1, bitorder="little")[:, :k * bits].astype(np.int64)  # (M, k * bits)
    v = (flat.reshape(len(buffer), k, bits) << np.arange(bits)).sum(axis=2)  # (M, k)
    return v - ((v >> (bits - 1)) << bits) if signed else v


def pack_images(images: np.ndarray, layout: StreamLayout, packing: str | None = None) -> np.ndarray:
    """Checked (N, C, H, W) images -> (N * words_per_image, in_bytes) uint8, the input DMA buffer;
    `packing`: FINN_PACKING, NUMPY_PACKING or None (default_packing())."""
    words = image_words(images, layout)  # (N * words, elems)
    if (packing or default_packing()) == FINN_PACKING:
        finnpy_to_packed_bytearray, _, DataType = _finn_packing()[0]
        dtype = DataType[f"{'INT' if layout.signed else 'UINT'}{layout.bits}"]
        packed = finnpy_to_packed_bytearray(words, dtype, reverse_inner=True, reverse_endian=True)
        packed = np.ascontiguousarray(packed, np.uint8)  # (N * words, ceil(elems * bits / 8))
        return np.pad(packed, ((0, 0), (0, layout.in_bytes - packed.shape[1])))
    return _bits_to_bytes(words, layout.bits, layout.in_bytes)


def unpack_decisions(buffer: np.ndarray, layout: StreamLayout,
                     packing: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, out_bytes) uint8 output DMA buffer -> ((N,) class, (N,) exit index), both int64."""
    if (packing or default_packing()) == FINN_PACKING:
        _, packed_bytearray_to_finnpy, DataType = _finn_packing()[0]
        dtype = DataType[f"UINT{layout.out_bytes * 8}"]
        words = packed_bytearray_to_finnpy(np.ascontiguousarray(buffer, np.uint8), dtype, (len(buffer), 1),
                                           reverse_inner=True, reverse_endian=True)
        words = np.asarray(words).astype(np.int64)[:, 0]
    else:
        words = _bytes_to_bits(buffer, 1, layout.out_bytes * 8, False)[:, 0]
    return words & ((1 << layout.class_bits) - 1), words >> layout.class_bits


# The device's side of the streams, for the simulated backends (virtual device, RTL).

def words_from_buffer(buffer: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """(M, in_bytes) input DMA buffer -> (M, elems) pixel codes, as the design's input port reads them."""
    return _bytes_to_bits(buffer, layout.elems, layout.bits, layout.signed)


def images_from_buffer(buffer: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """(N * words, in_bytes) input DMA buffer -> (N, C, H, W) pixel codes."""
    c, h, w = layout.image_shape
    words = words_from_buffer(buffer, layout)  # (N * words, elems)
    return words.reshape(-1, h, w, c).transpose(0, 3, 1, 2)


def decisions_to_buffer(classes: np.ndarray, exit_index: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """(N,) class and exit index -> (N, out_bytes) uint8, the decision words as the DMA writes them."""
    words = (np.asarray(exit_index, np.int64) << layout.class_bits) | np.asarray(classes, np.int64)
    return decision_words_to_buffer(words, layout)


def decision_words_to_buffer(words: np.ndarray, layout: StreamLayout) -> np.ndarray:
    """(N,) decision words (class | exit << class_bits) -> (N, out_bytes) uint8 as the DMA writes them."""
    return _bits_to_bytes(np.asarray(words, np.int64)[:, None], layout.out_bytes * 8, layout.out_bytes)
