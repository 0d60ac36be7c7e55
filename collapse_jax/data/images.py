"""Offline image data sets as tfds builders: Fashion-MNIST from local IDX files and scikit-learn's 8x8 digits.

Prepared once into an array_record data dir with Tensor features, then read through `as_data_source` (no TensorFlow).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

# Debian's `dataset-fashion-mnist` installs the four IDX files here.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("digits", "fashion_mnist_local")
# Digits has no official split: every 6th image (300 of 1,797) is held out, spread evenly over the file's order.
DIGITS_TEST_EVERY = 6


def default_data_dir() -> str:
    """Where prepared data sets live: $COLLAPSE_JAX_DATA_DIR, else ~/.cache/collapse_jax/tensorflow_datasets."""
    default = Path.home() / ".cache" / "collapse_jax" / "tensorflow_datasets"
    return os.environ.get("COLLAPSE_JAX_DATA_DIR", str(default))


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format, optionally gzipped) into a uint8 array."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    # Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then big-endian int32 sizes.
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    num_dims = raw[3]
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">i4", count=num_dims, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * num_dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def _idx_file(directory: Path, stem: str) -> Path:
    """The IDX file `stem`, gzipped or not."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(directory / stem)


def _image_features(height: int, width: int) -> tfds.features.FeaturesDict:
    """uint8 image, its class and its position in the source file (array_record stores examples in hashed order)."""
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(shape=(height, width), dtype=np.uint8),
            "label": tfds.features.Tensor(shape=(), dtype=np.int64),
            "index": tfds.features.Tensor(shape=(), dtype=np.int64),
        }
    )


def _examples(images: np.ndarray, labels: np.ndarray):
    """Yield (key, example) pairs in source order."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        yield index, {"image": image, "label": int(label), "index": index}


class FashionMnistLocal(tfds.core.GeneratorBasedBuilder):
    """Fashion-MNIST (Xiao et al. 2017): 60k train / 10k test 28x28 grey images in 10 classes, from local IDX files."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, source_dir: str | None = None, **kwargs):
        self._source_dir = Path(source_dir or FASHION_MNIST_DIR)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=_image_features(28, 28), supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            "test": self._generate_examples("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }

    def _generate_examples(self, images_stem: str, labels_stem: str):
        images = read_idx(_idx_file(self._source_dir, images_stem))
        labels = read_idx(_idx_file(self._source_dir, labels_stem))
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"{self._source_dir}: expected [N, 28, 28] images and N labels, got {images.shape}")
        yield from _examples(images, labels)


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, UCI), grey levels 0-16 rescaled to 0-255."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=_image_features(8, 8), supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        is_test = np.arange(len(images)) % DIGITS_TEST_EVERY == 0
        return {
            "train": self._generate_examples(images[~is_test], digits.target[~is_test]),
            "test": self._generate_examples(images[is_test], digits.target[is_test]),
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        yield from _examples(images, labels)


def _check_source(source_dir: str | None) -> None:
    """One-line error, before tfds starts, when the Fashion-MNIST IDX files are missing."""
    directory = Path(source_dir or FASHION_MNIST_DIR)
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    try:
        for stem in stems:
            _idx_file(directory, stem)
    except FileNotFoundError as missing:
        raise ValueError(
            f"fashion_mnist_local: missing {missing}; install with `apt-get install -y dataset-fashion-mnist` "
            f"or point config.model.source_dir at a folder holding the four IDX files"
        ) from None


def image_builder(name: str, data_dir: str | None = None, source_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """The prepared builder for `name` (prepared on first use; never a tfds catalog builder, never a download)."""
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown image data set {name!r}; allowed: {', '.join(DATASETS)}")
    data_dir = data_dir or default_data_dir()
    if name == "fashion_mnist_local":
        builder = FashionMnistLocal(data_dir=data_dir, source_dir=source_dir, file_format="array_record")
        if not builder.is_prepared():
            _check_source(source_dir)
    else:
        builder = Digits(data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


def load_images(
    name: str, split: str, data_dir: str | None = None, source_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All of a split as (images uint8 [N, H, W], labels int32 [N]), in the source file's order."""
    sources = image_builder(name, data_dir, source_dir).as_data_source()
    if split not in sources:
        raise ValueError(f"split: {name} has no split {split!r}; allowed: {', '.join(sorted(sources))}")
    source = sources[split]
    records = source.__getitems__(range(len(source)))
    order = np.argsort([record["index"] for record in records])
    images = np.stack([records[i]["image"] for i in order])
    labels = np.asarray([records[i]["label"] for i in order], dtype=np.int32)
    return images, labels
