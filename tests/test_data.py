"""Tests of the offline image builders: IDX parsing, tfds array_record round trips, digits parity with scikit-learn."""

import gzip
import struct
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from collapse_jax.data import images as image_data


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    """Write an unsigned-byte IDX file the way LeCun's MNIST files are laid out (big-endian sizes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.fixture
def tiny_fashion(tmp_path):
    """A fake Fashion-MNIST folder: 13 train and 7 test random 28x28 images, train gzipped, test raw."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (13, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 13),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (7, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 7),
    }
    source = tmp_path / "idx"
    source.mkdir()
    for stem, array in arrays.items():
        compress = stem.startswith("train")
        write_idx(source / (stem + ".gz" if compress else stem), array, compress)
    return source, arrays


def test_read_idx_round_trips_gzipped_and_raw_files(tmp_path):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    for compress in (True, False):
        path = tmp_path / f"x{compress}"
        write_idx(path, array, compress)
        np.testing.assert_array_equal(image_data.read_idx(path), array)


def test_read_idx_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">i", 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="header says shape"):
        image_data.read_idx(path)


def test_fashion_builder_returns_the_idx_contents_in_source_order(tiny_fashion, tmp_path):
    source, arrays = tiny_fashion
    data_dir = str(tmp_path / "tfds")
    train_images, train_labels = image_data.load_images("fashion_mnist_local", "train", data_dir, str(source))
    test_images, test_labels = image_data.load_images("fashion_mnist_local", "test", data_dir, str(source))
    # array_record stores examples in hashed-key order; the stored index restores the file's order exactly.
    np.testing.assert_array_equal(train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(test_images, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.int32
    assert list((tmp_path / "tfds" / "fashion_mnist_local" / "1.0.0").glob("*.array_record*"))
    # Read without TensorFlow: the data source path must not import it.
    assert "tensorflow" not in sys.modules


def test_fashion_builder_is_prepared_once_and_reused(tiny_fashion, tmp_path):
    source, arrays = tiny_fashion
    data_dir = str(tmp_path / "tfds")
    first, _ = image_data.load_images("fashion_mnist_local", "test", data_dir, str(source))
    # Once prepared, the IDX folder is no longer read: deleting it must not matter.
    for path in source.iterdir():
        path.unlink()
    again, _ = image_data.load_images("fashion_mnist_local", "test", data_dir, str(source))
    np.testing.assert_array_equal(first, again)


def test_missing_fashion_folder_is_a_one_line_error_with_the_install_command(tmp_path):
    with pytest.raises(ValueError) as error:
        image_data.load_images("fashion_mnist_local", "train", str(tmp_path / "tfds"), str(tmp_path / "nowhere"))
    message = str(error.value)
    assert "\n" not in message and "apt-get install -y dataset-fashion-mnist" in message


def test_unknown_data_set_and_split_name_the_field(tiny_fashion, tmp_path):
    with pytest.raises(ValueError, match="dataset: unknown image data set 'mnist'"):
        image_data.load_images("mnist", "train", str(tmp_path))
    source, _ = tiny_fashion
    with pytest.raises(ValueError, match="split: fashion_mnist_local has no split 'validation'"):
        image_data.load_images("fashion_mnist_local", "validation", str(tmp_path / "tfds"), str(source))


def test_digits_builder_matches_scikit_learn(tmp_path):
    train_images, train_labels = image_data.load_images("digits", "train", str(tmp_path))
    test_images, test_labels = image_data.load_images("digits", "test", str(tmp_path))
    digits = load_digits()
    is_test = np.arange(len(digits.images)) % image_data.DIGITS_TEST_EVERY == 0
    expected = np.round(digits.images * 255.0 / 16.0).astype(np.uint8)
    assert train_images.shape == (1497, 8, 8) and test_images.shape == (300, 8, 8)
    np.testing.assert_array_equal(train_images, expected[~is_test])
    np.testing.assert_array_equal(test_images, expected[is_test])
    np.testing.assert_array_equal(train_labels, digits.target[~is_test])
    np.testing.assert_array_equal(test_labels, digits.target[is_test])
    # Every class in both splits, roughly balanced (the held-out images are spread evenly over the file).
    assert np.bincount(test_labels, minlength=10).min() >= 20
