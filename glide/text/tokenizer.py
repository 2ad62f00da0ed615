"""Caption tokenizers.

`gpt2` is GLIDE's tokenizer: GPT-2's byte-level BPE applied to the lower-cased caption, no start or
end token, padded with id 50256 (<|endoftext|>). We run it with tiktoken (a fast, exact BPE engine)
over GPT-2's own `encoder.json` and `vocab.bpe` (MIT), shipped byte for byte in glide/text/data/ (see the
NOTICE there), so nothing is downloaded at run time.

`bytes` reads the lower-cased caption's UTF-8 bytes (ids 0..255, padding 256).

`gpt2` with a pruned table (`vocab`, the GPT-2 ids a model keeps, fitted to its training captions by
`fit_vocab`): GLIDE's BPE, but a small model's embedding holds only the tokens its captions use, here about
4,000 rows instead of 50,257 (13 MB at width 256). Model id i is GPT-2 id vocab[i]; a token outside the table
reads as one unknown id (len(vocab)), padding is len(vocab) + 1. Small models use `bytes` or a pruned table so
that a 50257-row table does not hold most of their parameters; docs/training.md compares the two.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from importlib import resources

import torch

# GPT-2's pre-tokenisation pattern (contractions, letters, digits, other symbols, whitespace).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@functools.lru_cache(maxsize=None)
def _gpt2_encoding():
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    data = resources.files(__package__) / "data"
    with resources.as_file(data / "vocab.bpe") as vocab, resources.as_file(data / "encoder.json") as encoder:
        ranks = data_gym_to_mergeable_bpe_ranks(str(vocab), str(encoder))
    return tiktoken.Encoding("glide-gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={})


def fit_vocab(texts: Iterable[str]) -> tuple[int, ...]:
    """The GPT-2 ids that `texts` use, sorted: a pruned table for `Tokenizer("gpt2", vocab=...)`."""
    enc = _gpt2_encoding()
    return tuple(sorted({i for text in texts for i in enc.encode_ordinary(text.lower())}))


class Tokenizer:
    def __init__(self, kind: str = "gpt2", vocab: tuple[int, ...] = ()):
        if kind not in ("gpt2", "bytes"):
            raise ValueError(f"unknown tokenizer {kind!r}")
        if vocab and kind != "gpt2":
            raise ValueError("a pruned vocab is a table of GPT-2 ids; it needs the gpt2 tokenizer")
        self.kind = kind
        self.vocab = tuple(vocab)
        self._index = {g: i for i, g in enumerate(self.vocab)}  # GPT-2 id -> model id
        self.unknown_token = len(self.vocab) if self.vocab else None
        self.vocab_size = len(self.vocab) + 2 if self.vocab else 50257 if kind == "gpt2" else 257
        self.pad_token = self.vocab_size - 1

    def encode(self, text: str) -> list[int]:
        text = text.lower()
        if self.kind == "gpt2":
            # Ordinary text only: "<|endoftext|>" in a caption is spelled out, as in the official encoder.
            ids = _gpt2_encoding().encode_ordinary(text)
            return [self._index.get(i, self.unknown_token) for i in ids] if self.vocab else ids
        return list(text.encode("utf-8"))

    def unknown_words(self, text: str) -> list[str]:
        """The pieces of `text` that a pruned table does not hold (they all read as one unknown id)."""
        if not self.vocab:
            return []
        enc = _gpt2_encoding()
        return [enc.decode([i]).strip() for i in enc.encode_ordinary(text.lower()) if i not in self._index]

    def decode(self, ids: list[int]) -> str:
        ids = [i for i in ids if i != self.pad_token]
        if self.kind == "gpt2":
            if self.vocab:
                return "".join("<unk>" if i == self.unknown_token else _gpt2_encoding().decode([self.vocab[i]])
                               for i in ids)
            return _gpt2_encoding().decode(ids)
        return bytes(ids).decode("utf-8", errors="replace")

    def padded(self, ids: list[int], context: int) -> tuple[list[int], list[bool]]:
        """Truncate to `context` and pad: (ids, mask) with mask True on real tokens."""
        ids = ids[:context]
        pad = context - len(ids)
        return ids + [self.pad_token] * pad, [True] * len(ids) + [False] * pad

    def __call__(self, prompts: list[str], context: int, warn: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize a batch into ([B, context] int64 ids, [B, context] bool mask)."""
        toks, masks = [], []
        for p in prompts:
            ids = self.encode(p)
            if warn and len(ids) > context:
                warnings.warn(
                    f"prompt {p[:40]!r}... has {len(ids)} tokens; truncated to the model's {context}",
                    stacklevel=2,
                )
            unknown = self.unknown_words(p) if warn else []
            if unknown:
                warnings.warn(f"prompt {p[:40]!r}: the model's vocabulary (its training captions) lacks "
                              f"{', '.join(repr(w) for w in dict.fromkeys(unknown))}; read as unknown", stacklevel=2)
            t, m = self.padded(ids, context)
            toks.append(t)
            masks.append(m)
        return torch.tensor(toks, dtype=torch.long), torch.tensor(masks, dtype=torch.bool)


@functools.lru_cache(maxsize=16)
def get_tokenizer(kind: str = "gpt2", vocab: tuple[int, ...] = ()) -> Tokenizer:
    return Tokenizer(kind, vocab)
