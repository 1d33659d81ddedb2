"""Data formats and data errors, on tiny trees built from real Fashion-MNIST images."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qat import data as D
from qat.image_fit import ImageFit, ImageFitError, fit_image, fit_images


def _write_idx(path: Path, arr: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))


def _write_png_tree(root: Path, images: np.ndarray, labels: np.ndarray, classes: list[str],
                    rgb: bool = False) -> None:
    for i, (img, y) in enumerate(zip(images, labels)):
        folder = root / classes[y]
        folder.mkdir(parents=True, exist_ok=True)
        arr = img[0]  # (H, W) grey
        pil = Image.fromarray(np.stack([arr] * 3, -1) if rgb else arr)
        pil.save(folder / f"{i:05d}.png")


def _first_of_each(images: np.ndarray, labels: np.ndarray, per_class: int, classes: int = 3):
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(classes)])
    return images[idx], labels[idx]


def test_fashion_mnist_from_debian_package(fmnist):
    assert fmnist["train"].images.shape == (60000, 1, 28, 28)
    assert fmnist["test"].images.shape == (10000, 1, 28, 28)
    assert fmnist["train"].images.dtype == np.uint8
    assert set(np.unique(fmnist["test"].labels)) == set(range(10))


def test_idx_files_written_from_real_images(fmnist, tmp_path):
    tr, te = fmnist["train"], fmnist["test"]
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", tr.images[:40, 0], 2051)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", tr.labels[:40], 2049)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", te.images[:20, 0], 2051)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", te.labels[:20], 2049)
    got = D.load_raw("fashion-mnist", tmp_path)
    assert np.array_equal(got["train"].images, tr.images[:40])
    assert np.array_equal(got["test"].labels, te.labels[:20])


def test_image_folder_tree_roundtrips_real_images(fmnist, tmp_path):
    images, labels = _first_of_each(fmnist["train"].images, fmnist["train"].labels, 10)
    names = ["a_tshirt", "b_trouser", "c_pullover"]
    _write_png_tree(tmp_path, images, labels, names)
    raw = D.load_raw("imagefolder", tmp_path, grayscale=True)
    assert raw["all"].classes == names
    assert np.array_equal(raw["all"].images, images)  # PNG is lossless; order: class, then file
    fitted = D.load_raw("imagefolder", tmp_path, grayscale=True, fit=ImageFit(32))["all"].images
    assert fitted.shape == (30, 1, 32, 32) and np.array_equal(fitted[:, :, 2:30, 2:30], images)
    index = D.make_split_indices(raw, 0.2, 0.2, seed=3)
    sizes = [len(index[s][1]) for s in ("train", "val", "test")]
    assert sizes == [18, 6, 6]
    all_idx = np.concatenate([index[s][1] for s in ("train", "val", "test")])
    assert sorted(all_idx.tolist()) == list(range(30))  # disjoint and complete
    splits = D.assemble(raw, index)
    assert splits.shape == (1, 28, 28)
    rgb = D.load_raw("imagefolder", tmp_path)["all"].images  # PNG (H, W, C) read as (C, H, W)
    assert rgb.shape == (30, 3, 28, 28) and rgb.flags["C_CONTIGUOUS"]  # a strided view crashed torch


def test_cinic10_layout(fmnist, tmp_path):
    names = ["airplane", "automobile", "bird"]
    for split, src, n in (("train", "train", 6), ("valid", "train", 3), ("test", "test", 3)):
        images, labels = _first_of_each(fmnist[src].images, fmnist[src].labels, n)
        _write_png_tree(tmp_path / split, images, labels, names, rgb=True)
    raw = D.load_raw("cinic10", tmp_path)
    assert set(raw) == {"train", "val", "test"}
    assert raw["train"].images.shape == (18, 3, 28, 28)
    raw = D.load_raw("cinic10", tmp_path, fit=ImageFit(32))
    index = D.make_split_indices(raw, 0.1, 0.2, seed=0)
    splits = D.assemble(raw, index)
    assert [len(splits.train), len(splits.val), len(splits.test)] == [18, 9, 9]
    assert splits.shape == (3, 32, 32)
    # the grey image copied to three channels survives the round trip
    assert np.array_equal(raw["test"].images[:, 1], raw["test"].images[:, 0])


def test_cifar10_python_batches(fmnist, tmp_path):
    padded = fit_images(fmnist["train"].images[:60], ImageFit(32))  # (60, 1, 32, 32)
    rgb = np.repeat(padded, 3, axis=1)  # (60, 3, 32, 32)
    labels = fmnist["train"].labels[:60]
    for i in range(5):
        part = slice(i * 10, (i + 1) * 10)
        with open(tmp_path / f"data_batch_{i + 1}", "wb") as f:
            pickle.dump({b"data": rgb[part].reshape(10, -1), b"labels": labels[part].tolist()}, f)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": rgb[50:].reshape(10, -1), b"labels": labels[50:].tolist()}, f)
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    raw = D.load_raw("cifar10", tmp_path)
    assert np.array_equal(raw["train"].images, rgb[:50])
    assert raw["train"].classes[3] == "c3"
    index = D.make_split_indices(raw, 0.2, 0.2, seed=1)
    assert len(index["val"][1]) == 10 and index["val"][0] == "train"
    assert not set(index["val"][1]) & set(index["train"][1])


def test_split_is_seeded():
    a = D.split_indices(1000, (0.1,), seed=5)
    b = D.split_indices(1000, (0.1,), seed=5)
    c = D.split_indices(1000, (0.1,), seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_limit_draws_from_every_class_of_a_class_sorted_split():
    """A folder is read class by class: the first N of a split would miss classes."""
    labels = np.repeat(np.arange(6), 100)  # (600,) in folder order
    index = D.split_indices(600, (0.2, 0.2), seed=0)[0]  # the training part, sorted
    kept = D.limit(index, 120, seed=0)
    assert len(kept) == 120 and len(set(kept.tolist())) == 120 and set(kept) <= set(index)
    assert np.array_equal(kept, np.sort(kept)) and np.array_equal(kept, D.limit(index, 120, seed=0))
    assert set(labels[kept].tolist()) == set(range(6))
    assert D.limit(index, None, seed=0) is index and D.limit(index, 10_000, seed=0) is index


# ----------------------------------------------------------------------------- errors

def test_missing_fashion_mnist_names_path_and_package(tmp_path):
    with pytest.raises(D.DataError) as e:
        D.load_raw("fashion-mnist", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)
    assert "dataset-fashion-mnist" in str(e.value)


def test_bad_idx_file_is_named(fmnist, tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01junk"))
    with pytest.raises(D.DataError, match="train-images-idx3-ubyte.gz"):
        D.load_raw("fashion-mnist", tmp_path)


def test_corrupt_image_is_named(fmnist, tmp_path):
    _write_png_tree(tmp_path, *_first_of_each(fmnist["train"].images, fmnist["train"].labels, 2),
                    ["x", "y", "z"])
    bad = tmp_path / "y" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(D.DataError) as e:
        D.load_raw("imagefolder", tmp_path, grayscale=True)
    assert str(bad) in str(e.value)


def test_wrong_layout_is_named(fmnist, tmp_path):
    Image.fromarray(fmnist["train"].images[0, 0]).save(tmp_path / "loose.png")
    with pytest.raises(D.DataError, match="loose.png"):
        D.load_raw("imagefolder", tmp_path)
    cinic = tmp_path / "cinic"
    _write_png_tree(cinic / "train", *_first_of_each(fmnist["train"].images, fmnist["train"].labels, 1),
                    ["a", "b", "c"])
    with pytest.raises(D.DataError, match="valid"):
        D.load_raw("cinic10", cinic)


def test_mixed_image_sizes_are_named(fmnist, tmp_path):
    _write_png_tree(tmp_path, *_first_of_each(fmnist["train"].images, fmnist["train"].labels, 1),
                    ["a", "b", "c"])
    odd = tmp_path / "b" / "odd.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(odd)
    with pytest.raises(D.DataError, match="odd.png"):
        D.load_raw("imagefolder", tmp_path, grayscale=True)


def test_corrupt_cifar_batch_is_named(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(D.DataError, match="data_batch_1"):
        D.load_raw("cifar10", tmp_path)


def test_mixed_image_sizes_are_fitted_when_a_size_is_given(fmnist, tmp_path):
    """With data.image_size every image is brought to it as it is read, whatever its size."""
    _write_png_tree(tmp_path, *_first_of_each(fmnist["train"].images, fmnist["train"].labels, 1),
                    ["a", "b", "c"])
    Image.fromarray(np.full((40, 20), 7, np.uint8)).save(tmp_path / "b" / "tall.png")
    raw = D.load_raw("imagefolder", tmp_path, grayscale=True, fit=ImageFit(32, "crop"))
    assert raw["all"].images.shape == (4, 1, 32, 32)
    with pytest.raises(D.DataError, match=r"tall.png: image of 40x20 is larger than data.image_size 32"):
        D.load_raw("imagefolder", tmp_path, grayscale=True, fit=ImageFit(32, "pad"))


def test_pad_centres_and_keeps_every_pixel():
    image = np.arange(3 * 5 * 6, dtype=np.uint8).reshape(3, 5, 6)  # (C, H, W)
    out = fit_image(image, ImageFit(8, "pad"))
    assert out.shape == (3, 8, 8)
    assert np.array_equal(out[:, 1:6, 1:7], image)  # top (8-5)//2 = 1, left (8-6)//2 = 1
    assert out.sum() == image.sum()
    with pytest.raises(ImageFitError, match="larger than data.image_size 4"):
        fit_image(image, ImageFit(4, "pad"))


def test_crop_takes_the_centre_and_pads_the_short_side():
    image = np.arange(1 * 10 * 4, dtype=np.uint8).reshape(1, 10, 4)  # (C, H, W)
    out = fit_image(image, ImageFit(6, "crop"))  # rows 2..7 kept, columns padded by 1 each side
    assert out.shape == (1, 6, 6)
    assert np.array_equal(out[:, :, 1:5], image[:, 2:8, :])
    assert not out[:, :, 0].any() and not out[:, :, 5].any()


def test_resize_keeps_the_aspect_ratio_and_constant_images_stay_constant():
    wide = np.full((3, 32, 64), 200, np.uint8)  # (C, H, W): 2:1
    out = fit_image(wide, ImageFit(16, "resize"))
    assert out.shape == (3, 16, 16) and (out == 200).all()  # shorter side to 16, centre crop
    gradient = np.tile(np.arange(64, dtype=np.uint8) * 4, (1, 64, 1))  # (1, 64, 64), left to right
    small = fit_image(gradient, ImageFit(32, "resize"))[0]  # (32, 32)
    assert (np.diff(small.astype(int), axis=1) > 0).all()  # still increasing left to right
    assert np.array_equal(fit_images(gradient[None], ImageFit(32, "resize"))[0, 0], small)


def test_an_image_of_the_right_size_passes_unchanged():
    image = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16), dtype=np.uint8)
    for method in ("pad", "crop", "resize"):
        assert fit_images(image, ImageFit(16, method)) is image


def test_unknown_fit_method_is_refused():
    with pytest.raises(ImageFitError, match="unknown image fit 'stretch'"):
        ImageFit(32, "stretch")
