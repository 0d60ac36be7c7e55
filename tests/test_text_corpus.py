"""Text corpus builder and tokenizer: whole-work splits, blocks cover each work exactly, BPE round trip, HF loading."""

import json

import numpy as np
import pytest

from collapse_jax.data.text_corpus import corpus_config, load_corpus, split_works
from collapse_jax.data.tokenizer import load_tokenizer, train_bpe

WORDS = "thou art the king of night and day my lord what say you now to me fair sweet love".split()


def _write_corpus(directory, num_works=7):
    """num_works small 'works' of seeded random verse; work i starts with a unique marker line."""
    rng = np.random.default_rng(0)
    for index in range(num_works):
        lines = [f"WORK{index}."] + [" ".join(rng.choice(WORDS, size=8)) for _ in range(60 + 10 * index)]
        (directory / f"work_{index}.txt").write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = _write_corpus(tmp_path_factory.mktemp("corpus"))
    config = corpus_config(
        corpus_dir=str(directory), pattern="*.txt", block_length=16, vocab_size=300, test_works=2, validation_works=1
    )
    return config, load_corpus(tmp_path_factory.mktemp("tfds"), config)


def test_works_are_split_whole_and_disjoint(corpus):
    config, _ = corpus
    works = split_works(config)
    assert [len(works[s]) for s in ("train", "validation", "test")] == [4, 1, 2]
    names = [path.name for split in works.values() for path in split]
    assert sorted(names) == sorted(set(names)) and len(names) == 7


def test_each_split_holds_exactly_the_full_blocks_of_its_works(corpus):
    config, loaded = corpus
    for split, paths in split_works(config).items():
        streams = [loaded.tokenizer.encode(path.read_text()) for path in paths]
        expected = sorted(tuple(s[i : i + 16]) for s in streams for i in range(0, len(s) - 15, 16))
        assert sorted(map(tuple, loaded.blocks[split].tolist())) == expected


def test_test_split_text_never_appears_in_training_blocks(corpus):
    config, loaded = corpus
    train_text = "".join(loaded.tokenizer.decode(row) for row in loaded.blocks["train"])
    for path in split_works(config)["test"]:
        assert path.read_text().splitlines()[0] not in train_text  # the work's unique marker


def test_tokenizer_is_saved_with_the_records_and_round_trips_text(corpus):
    _, loaded = corpus
    assert (loaded.directory / "tokenizer.json").is_file()
    text = "my lord, what say you now? Zounds! ünïcode"
    assert loaded.tokenizer.decode(loaded.tokenizer.encode(text)) == text
    assert loaded.tokenizer.vocab_size == 300
    assert loaded.tokenizer.bos_id == loaded.tokenizer.eos_id != loaded.tokenizer.pad_id


def test_second_load_reads_the_cached_records(corpus, tmp_path):
    config, loaded = corpus
    again = load_corpus(loaded.directory.parents[2], config)
    for split in loaded.blocks:
        np.testing.assert_array_equal(again.blocks[split], loaded.blocks[split])


def test_loads_a_gpt2_style_vocab_and_merges_directory(tmp_path):
    tokenizer = train_bpe([" ".join(WORDS)] * 20, 280)
    tokenizer.backend.model.save(str(tmp_path))  # writes vocab.json + merges.txt, GPT-2's on-disk layout
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"eos_token": "</s>", "pad_token": "<pad>"}))
    loaded = load_tokenizer(tmp_path)
    text = "thou art the king of night"
    assert loaded.encode(text) == tokenizer.encode(text)
    assert (loaded.eos_id, loaded.pad_id) == (tokenizer.eos_id, tokenizer.pad_id)


def test_bad_inputs_raise_one_line_value_errors(tmp_path):
    with pytest.raises(ValueError, match="corpus_dir"):
        load_corpus(tmp_path / "tfds", corpus_config(corpus_dir=str(tmp_path), pattern="*.txt"))
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(["abc"], 100)
    with pytest.raises(ValueError, match="tokenizer path"):
        load_tokenizer(tmp_path / "missing")
