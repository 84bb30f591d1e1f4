"""A tiny word-level tokenizer built in code, with a character fallback.

The reference target cannot download a tokenizer, so this one is defined by the synthetic data's
closed vocabulary (see ``data.py``). It is saved beside the model (``specops_tokenizer.json``) so
that a checkpoint directory is self-contained; ``load_tokenizer`` falls back to Hugging Face's
``AutoTokenizer`` for real checkpoints.

Text convention: tokens are separated by single spaces. Words outside the vocabulary are spelled
with ``##c`` character pieces, which decode without spaces between them, so ``decode(encode(s))``
equals ``s`` after whitespace normalisation for any ASCII text.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

TOKENIZER_FILE = "specops_tokenizer.json"
VOCAB_SIZE = 512

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<mask>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"]
PAD, BOS, EOS, MASK, UNK, USER, ASSISTANT, SYSTEM = range(len(SPECIAL_TOKENS))
CHAR_PREFIX = "##"
MAX_NUMBER = 200  # numbers 0..MAX_NUMBER-1 are single tokens (arithmetic tasks stay short)


class TextTokenizer(Protocol):
    """What the reference backend needs from any tokenizer (tiny or Hugging Face)."""

    eos_token_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]: ...


def _fallback_chars() -> list[str]:
    return list(string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation)


@dataclass
class TinyTokenizer:
    """Word-level tokenizer over a fixed vocabulary, padded to ``VOCAB_SIZE`` entries."""

    pieces: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {piece: i for i, piece in enumerate(self.pieces)}

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    @property
    def eos_token_id(self) -> int:
        return EOS

    @property
    def mask_token_id(self) -> int:
        return MASK

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in text.split():
            if word in self.index:
                ids.append(self.index[word])
            else:
                ids.extend(self.index.get(CHAR_PREFIX + ch, UNK) for ch in word)
        return ids

    def decode(self, ids: list[int]) -> str:
        out: list[str] = []
        previous_was_char = False
        for i in ids:
            if not len(SPECIAL_TOKENS) <= i < len(self.pieces):
                continue  # special tokens are skipped, as skip_special_tokens=True does
            piece = self.pieces[i]
            if piece.startswith("<reserved_"):
                continue
            if piece.startswith(CHAR_PREFIX) and len(piece) > len(CHAR_PREFIX):
                ch = piece[len(CHAR_PREFIX) :]
                if previous_was_char:
                    out[-1] += ch
                else:
                    out.append(ch)
                previous_was_char = True
            else:
                out.append(piece)
                previous_was_char = False
        return " ".join(out)

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """Chat template: ``<bos> <|role|> content ... <|assistant|>`` (generation prompt appended)."""
        role_token = {"user": USER, "assistant": ASSISTANT, "system": SYSTEM}
        ids = [BOS]
        for message in messages:
            role = message.get("role", "user")
            if role not in role_token:
                raise ValueError(f"messages.role: unsupported role {role!r}")
            ids.append(role_token[role])
            ids.extend(self.encode(message.get("content", "")))
            if role == "assistant":
                ids.append(EOS)
        ids.append(ASSISTANT)
        return ids

    def completion_prompt(self, prompt: str) -> list[int]:
        return [BOS, *self.encode(prompt)]

    def save(self, directory: Path) -> None:
        (directory / TOKENIZER_FILE).write_text(json.dumps({"pieces": self.pieces}, indent=0))

    @classmethod
    def load(cls, directory: Path) -> TinyTokenizer:
        return cls(pieces=json.loads((directory / TOKENIZER_FILE).read_text())["pieces"])


def build_tiny_tokenizer(words: list[str]) -> TinyTokenizer:
    """Vocabulary = specials + numbers + the data's words + character fallback, padded to 512."""
    pieces = list(SPECIAL_TOKENS)
    seen = set(pieces)

    def add(piece: str) -> None:
        if piece not in seen:
            seen.add(piece)
            pieces.append(piece)

    for n in range(MAX_NUMBER):
        add(str(n))
    for word in words:
        add(word)
    for ch in _fallback_chars():
        add(CHAR_PREFIX + ch)
    if len(pieces) > VOCAB_SIZE:
        raise ValueError(f"vocabulary: {len(pieces)} pieces exceed {VOCAB_SIZE}")
    pieces.extend(f"<reserved_{i}>" for i in range(VOCAB_SIZE - len(pieces)))
    return TinyTokenizer(pieces=pieces)


class HFTokenizerAdapter:
    """Wraps a Hugging Face tokenizer (real checkpoints) behind the same small interface."""

    def __init__(self, tokenizer) -> None:  # noqa: ANN001 - transformers type, imported lazily
        self._tok = tokenizer
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.vocab_size = len(tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        return list(self._tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))

    def completion_prompt(self, prompt: str) -> list[int]:
        return list(self._tok.encode(prompt))


def load_tokenizer(directory: Path) -> TinyTokenizer | HFTokenizerAdapter:
    directory = Path(directory)
    if (directory / TOKENIZER_FILE).exists():
        return TinyTokenizer.load(directory)
    from transformers import AutoTokenizer

    return HFTokenizerAdapter(AutoTokenizer.from_pretrained(str(directory)))
