"""Caption tokenizers.

`gpt2` is GLIDE's tokenizer: GPT-2's byte-level BPE applied to the lower-cased caption, no start or
end token, padded with id 50256 (<|endoftext|>). We run it with tiktoken (a fast, exact BPE engine)
over GPT-2's own `encoder.json` and `vocab.bpe` (MIT), shipped byte for byte in glide/text/data/ (see the
NOTICE there), so nothing is downloaded at run time.

`bytes` reads the lower-cased caption's UTF-8 bytes (ids 0..255, padding 256). Small models use it:
a 50257-row table would otherwise hold most of their parameters.
"""

from __future__ import annotations

import functools
import warnings
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


class Tokenizer:
    def __init__(self, kind: str = "gpt2"):
        if kind not in ("gpt2", "bytes"):
            raise ValueError(f"unknown tokenizer {kind!r}")
        self.kind = kind
        self.vocab_size = 50257 if kind == "gpt2" else 257
        self.pad_token = self.vocab_size - 1

    def encode(self, text: str) -> list[int]:
        text = text.lower()
        if self.kind == "gpt2":
            # Ordinary text only: "<|endoftext|>" in a caption is spelled out, as in the official encoder.
            return _gpt2_encoding().encode_ordinary(text)
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        ids = [i for i in ids if i != self.pad_token]
        if self.kind == "gpt2":
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
            t, m = self.padded(ids, context)
            toks.append(t)
            masks.append(m)
        return torch.tensor(toks, dtype=torch.long), torch.tensor(masks, dtype=torch.bool)


@functools.lru_cache(maxsize=None)
def get_tokenizer(kind: str = "gpt2") -> Tokenizer:
    return Tokenizer(kind)
