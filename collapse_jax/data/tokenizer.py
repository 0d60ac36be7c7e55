"""Byte-level BPE tokenizer for the language-model corpus: trained with `tokenizers` and saved as one JSON file.

Also loads a GPT-2 / OPT tokenizer from a local Hugging Face directory (tokenizer.json, or vocab.json + merges.txt).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

# OPT's convention: one token "</s>" is both the beginning-of-sequence prompt and the end marker; "<pad>" pads.
END_TOKEN = "</s>"
PAD_TOKEN = "<pad>"


@dataclasses.dataclass(frozen=True)
class TextTokenizer:
    """A `tokenizers.Tokenizer` plus the special ids the language model needs."""

    backend: tokenizers.Tokenizer
    bos_id: int
    eos_id: int
    pad_id: int

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can emit (the model's vocabulary may be padded beyond it)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens (blocks get their BOS from the model's input pipeline)."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; ids outside the tokenizer's vocabulary (padded model rows) are dropped."""
        return self.backend.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size], skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as one `tokenizer.json` file that `load_tokenizer` reads back."""
        self.backend.save(str(path))


def train_bpe(texts: Iterable[str], vocab_size: int) -> TextTokenizer:
    """Train a byte-level BPE (GPT-2 style: 256 byte symbols, then merges) on `texts`."""
    if vocab_size < 260:
        raise ValueError(f"vocab_size: must be >= 260 (256 bytes + special tokens), got {vocab_size}")
    backend = tokenizers.Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD_TOKEN, END_TOKEN],
        # Every byte is a symbol, so any text (unseen works, generated gibberish) round-trips.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return _with_special_ids(backend, bos_token=END_TOKEN, eos_token=END_TOKEN, pad_token=PAD_TOKEN)


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """Load a tokenizer.json file, or a local Hugging Face GPT-2/OPT directory; never touches the network."""
    path = Path(path)
    if path.is_file():
        return _with_special_ids(tokenizers.Tokenizer.from_file(str(path)), END_TOKEN, END_TOKEN, PAD_TOKEN)
    if not path.is_dir():
        raise ValueError(f"tokenizer path: {path} is neither a tokenizer.json file nor a directory")
    if (path / "tokenizer.json").is_file():
        backend = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    elif (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        backend = tokenizers.Tokenizer(models.BPE.from_file(str(path / "vocab.json"), str(path / "merges.txt")))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
    else:
        raise ValueError(f"tokenizer path: {path} has neither tokenizer.json nor vocab.json + merges.txt")
    special = _hf_special_tokens(path)
    # GPT-2 has no pad token; padding is never attended to, so its end token serves (as in HF's examples).
    eos = special.get("eos_token", END_TOKEN)
    return _with_special_ids(backend, special.get("bos_token", eos), eos, special.get("pad_token", eos))


def _hf_special_tokens(directory: Path) -> dict[str, str]:
    """Special-token strings from special_tokens_map.json / tokenizer_config.json (values may be dicts)."""
    special: dict[str, str] = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (directory / name).is_file():
            for key, value in json.loads((directory / name).read_text()).items():
                if key in ("bos_token", "eos_token", "pad_token") and value is not None:
                    special[key] = value["content"] if isinstance(value, dict) else str(value)
    return special


def _with_special_ids(backend: tokenizers.Tokenizer, bos_token: str, eos_token: str, pad_token: str) -> TextTokenizer:
    """Resolve special-token strings to ids; a missing one is a corrupt or foreign tokenizer file."""
    ids = {}
    for role, token in (("bos", bos_token), ("eos", eos_token), ("pad", pad_token)):
        token_id = backend.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer: special token {token!r} ({role}) is not in the vocabulary")
        ids[role] = token_id
    return TextTokenizer(backend, bos_id=ids["bos"], eos_id=ids["eos"], pad_id=ids["pad"])
