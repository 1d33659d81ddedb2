"""Image data sets from local disk, as uint8 arrays, with a seeded train/validation/test split.

Formats: Fashion-MNIST IDX files (Debian's `dataset-fashion-mnist`, the default),
CIFAR-10 python pickle batches, CINIC-10 and any ImageFolder tree (`ROOT/<class>/*.png`,
optionally under `train/`, `valid/` or `val/`, `test/`). Nothing is downloaded. Every
problem with the input is a `DataError` naming the file or folder at fault.

The validation split is the calibration set of later steps.
"""
from __future__ import annotations

import functools
import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.errors import BtseeError
from qat.image_fit import ImageFit, ImageFitError, fit_image, fit_images

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_APT = "dataset-fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CINIC10_MEAN = (0.47889522, 0.47227842, 0.43047404)
CINIC10_STD = (0.24205776, 0.23828046, 0.25874835)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff"}
DATASETS = ("fashion-mnist", "cifar10", "cinic10", "imagefolder")


class DataError(BtseeError):
    """A data set is missing, corrupt or laid out wrongly; the message names the path."""


@dataclass
class ImageSet:
    """Images (N, C, H, W) uint8, labels (N,) int64, and the class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.classes)


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.images.shape[1:])


# --------------------------------------------------------------------------- formats

@functools.lru_cache(maxsize=4)
def _gunzipped(path: Path, size: int, mtime_ns: int) -> bytes:
    """The decompressed bytes of `path` as it was at (size, mtime_ns): the four
    Fashion-MNIST files are read once per process, not once per step or check."""
    return gzip.decompress(path.read_bytes())


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Reads one gzipped IDX file (magic 2051: images (N, H, W), 2049: labels (N,)),
    read-only (callers copy what they keep)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        st = path.stat()
        raw = _gunzipped(path, st.st_size, st.st_mtime_ns)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from e
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file with magic {magic}")
    ndim = 3 if magic == 2051 else 1
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise DataError(f"{path}: holds {len(raw) - offset} bytes of data, header says {count}")
    return np.frombuffer(raw, np.uint8, count, offset).reshape(dims)


def load_fashion_mnist(root: Path) -> dict[str, ImageSet]:
    """Fashion-MNIST's four IDX files: {'train': 60k, 'test': 10k} images (N, 1, 28, 28)."""
    if not root.is_dir():
        raise DataError(f"{root}: Fashion-MNIST folder not found; install it with "
                        f"`apt-get install {FASHION_MNIST_APT}` or set data.root")
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz", 2051)
        labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", 2049)
        if len(images) != len(labels):
            raise DataError(f"{root / f'{prefix}-labels-idx1-ubyte.gz'}: {len(labels)} labels "
                            f"for {len(images)} images")
        if labels.max(initial=0) >= 10:
            raise DataError(f"{root / f'{prefix}-labels-idx1-ubyte.gz'}: label {labels.max()} >= 10")
        out[split] = ImageSet(images[:, None].copy(), labels.astype(np.int64), FASHION_MNIST_CLASSES)
    return out


def _unpickle(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"{path}: file not found (CIFAR-10 python batches expected)")
    try:
        with path.open("rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as e:  # pickle raises many types on corrupt input
        raise DataError(f"{path}: not a readable CIFAR-10 pickle batch ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (a dict was expected)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{path}: CIFAR-10 batch without 'data' and 'labels'")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{path}: 'data' has shape {data.shape}, expected (N, 3072) for {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: Path) -> dict[str, ImageSet]:
    """CIFAR-10 python batches (`data_batch_1..5`, `test_batch`, `batches.meta`)."""
    if not root.is_dir():
        raise DataError(f"{root}: CIFAR-10 folder not found (python batches expected; set data.root)")
    classes = CIFAR10_CLASSES
    meta = root / "batches.meta"
    if meta.exists():
        names = _unpickle(meta).get("label_names")
        if names:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    parts = [_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)]
    train = ImageSet(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), classes)
    test_x, test_y = _cifar_batch(root / "test_batch")
    return {"train": train, "test": ImageSet(test_x, test_y, classes)}


def _read_image(path: Path, mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: corrupt or unreadable image ({e})") from e
    # (H, W, C) -> (C, H, W), copied: a transposed view stacks into strides that crash
    # torch's CPU backward (seen on 64x64 RGB ResNet-8)
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _class_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    stray = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if stray:
        raise DataError(f"{stray[0]}: image directly in {folder}; the layout is {folder}/<class>/<image>")
    if not subdirs:
        raise DataError(f"{folder}: no class folders; the layout is {folder}/<class>/<image>")
    return subdirs


def load_image_folder(folder: Path, classes: list[str] | None = None, mode: str = "RGB",
                      fit: ImageFit | None = None) -> ImageSet:
    """Reads `folder/<class>/*.<image>`; class names sorted, or matched to `classes`.
    With `fit` every image is brought to fit.size on reading (so sizes may differ);
    without, all images must have one shape."""
    dirs = _class_folders(folder)
    names = [d.name for d in dirs]
    if classes is not None and names != classes:
        raise DataError(f"{folder}: class folders {names} differ from {classes}")
    images, labels = [], []
    shape = None
    for label, d in enumerate(dirs):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{d}: class folder holds no images")
        for f in files:
            arr = _read_image(f, mode)
            if fit is not None:
                try:
                    arr = fit_image(arr, fit)
                except ImageFitError as e:
                    raise DataError(f"{f}: {e}") from e
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(f"{f}: image of shape {arr.shape[1:]} where the others are {shape[1:]}")
            images.append(arr)
            labels.append(label)
    return ImageSet(np.stack(images), np.asarray(labels, np.int64), names)


def _split_dir(root: Path, *names: str) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def load_folder_tree(root: Path, mode: str, require_splits: bool, fit: ImageFit | None = None
                     ) -> dict[str, ImageSet]:
    """An ImageFolder tree: `root/{train,valid|val,test}/<class>/...`, or `root/<class>/...`."""
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found (set data.root)")
    train_dir = _split_dir(root, "train")
    if train_dir is None:
        if require_splits:
            raise DataError(f"{root}: no train/ folder; CINIC-10 is laid out as "
                            f"{root}/{{train,valid,test}}/<class>/*.png")
        return {"all": load_image_folder(root, mode=mode, fit=fit)}
    out = {"train": load_image_folder(train_dir, mode=mode, fit=fit)}
    classes = out["train"].classes
    for split, names in (("val", ("valid", "val")), ("test", ("test",))):
        d = _split_dir(root, *names)
        if d is None:
            if require_splits:
                raise DataError(f"{root}: no {'/'.join(names)} folder; CINIC-10 is laid out as "
                                f"{root}/{{train,valid,test}}/<class>/*.png")
            continue
        out[split] = load_image_folder(d, classes=classes, mode=mode, fit=fit)
    return out


# --------------------------------------------------------------------------- splits

def default_root(dataset: str) -> Path | None:
    return FASHION_MNIST_ROOT if dataset == "fashion-mnist" else None


def load_raw(dataset: str, root: str | Path | None, grayscale: bool = False,
             fit: ImageFit | None = None) -> dict[str, ImageSet]:
    """The data set as found on disk: some of 'train', 'val', 'test', 'all'; with `fit`,
    every image brought to fit.size x fit.size (`qat.image_fit`)."""
    if dataset not in DATASETS:
        raise DataError(f"data.dataset: unknown data set {dataset!r}; choose one of {list(DATASETS)}")
    path = Path(root) if root else default_root(dataset)
    if path is None:
        raise DataError(f"data.root: {dataset} has no default location; set data.root to its folder")
    if dataset in ("fashion-mnist", "cifar10"):
        raw = load_fashion_mnist(path) if dataset == "fashion-mnist" else load_cifar10(path)
        if fit is None:
            return raw
        try:
            return {k: ImageSet(fit_images(v.images, fit), v.labels, v.classes) for k, v in raw.items()}
        except ImageFitError as e:
            raise DataError(f"{path}: {e}") from e
    mode = "L" if grayscale else "RGB"
    return load_folder_tree(path, mode, require_splits=(dataset == "cinic10"), fit=fit)


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """A seeded permutation of range(n) cut into len(fractions)+1 parts; the first part
    takes what the fractions leave. Each part is sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    sizes = [int(round(f * n)) for f in fractions]
    cuts = np.cumsum([n - sum(sizes)] + sizes)[:-1]
    return [np.sort(p) for p in np.split(perm, cuts)]


def make_split_indices(raw: dict[str, ImageSet], val_fraction: float, test_fraction: float,
                       seed: int) -> dict[str, tuple[str, np.ndarray]]:
    """Which source set and which indices make each of train/val/test."""
    if "all" in raw:
        tr, va, te = split_indices(len(raw["all"]), (val_fraction, test_fraction), seed)
        return {"train": ("all", tr), "val": ("all", va), "test": ("all", te)}
    if "test" not in raw:
        raise DataError("the data set has no test split")
    out = {"test": ("test", np.arange(len(raw["test"])))}
    if "val" in raw:
        out["train"] = ("train", np.arange(len(raw["train"])))
        out["val"] = ("val", np.arange(len(raw["val"])))
    else:
        tr, va = split_indices(len(raw["train"]), (val_fraction,), seed)
        out["train"], out["val"] = ("train", tr), ("train", va)
    return out


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (for normalisation)."""
    x = images.astype(np.float64) / 255.0
    return x.mean(axis=(0, 2, 3)).tolist(), x.std(axis=(0, 2, 3)).tolist()


def limit(index: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """`n` of `index` drawn with `seed` (sorted), or all of it when n is None or larger.
    Drawn, not the first n: a folder's images are read class by class, so the first n
    of a split can miss whole classes."""
    if n is None or n >= len(index):
        return index
    return np.sort(np.random.default_rng(seed).choice(index, n, replace=False))


def assemble(raw: dict[str, ImageSet], index: dict[str, tuple[str, np.ndarray]]) -> Splits:
    """Cuts the splits out of the raw sets by `index`."""
    return Splits(**{split: raw[source].subset(idx) for split, (source, idx) in index.items()})
