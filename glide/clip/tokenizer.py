"""CLIP's tokenizer (the "SimpleTokenizer" that GLIDE's noised CLIP reads).

Text is repaired with ftfy, HTML-unescaped twice, whitespace-collapsed and lower-cased, split into
words, and each word is byte-level BPE encoded with CLIP's 48894 merges; a word's last symbol carries
`</w>`. `<|startoftext|>` / `<|endoftext|>` written in the text become the special tokens themselves.
A caption is `[start] + ids[:context-2] + [end]`, right-padded with 0, plus its length (start and end
included): the text encoder reads its output at position `length - 1`, the end token.

The merges file is CLIP's `bpe_simple_vocab_16e6.txt.gz` (MIT), shipped byte for byte in glide/clip/data/
(see the NOTICE there), so no other package is needed.
"""

from __future__ import annotations

import functools
import gzip
import html
import itertools
from pathlib import Path

import regex  # Unicode classes (\p{L}, \p{N}); tiktoken depends on it too
import torch

from ..errors import GlideError

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # CLIP uses the file's first 48894 merges (after its header line)
START, END = "<|startoftext|>", "<|endoftext|>"
# Special tokens, contractions, runs of letters, single digits, runs of other non-space symbols.
PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def vocab_path() -> Path:
    path = Path(__file__).parent / "data" / VOCAB_FILE
    if not path.is_file():
        raise GlideError(f"this installation of glide lacks its data file {path}: reinstall the package")
    return path


@functools.lru_cache(maxsize=None)
def byte_symbols() -> dict[int, str]:
    """A printable character for each byte (GPT-2's table): printable Latin-1 bytes stand for themselves,
    the others are moved to code points 256 and up so that no symbol is whitespace or a control code.
    The dict's order (printable bytes first) is the order of the first 256 vocabulary entries."""
    table = {b: chr(b) for r in (("!", "~"), ("¡", "¬"), ("®", "ÿ")) for b in range(ord(r[0]), ord(r[1]) + 1)}
    moved = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + n) for n, b in enumerate(moved)})
    return table


class CLIPTokenizer:
    def __init__(self, path: str | Path | None = None):
        with gzip.open(path or vocab_path()) as f:
            lines = f.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
        symbols = list(byte_symbols().values())
        # Vocabulary order: bytes, bytes ending a word, one entry per merge, then the two specials.
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START, END]
        self.encoder = {s: i for i, s in enumerate(vocab)}
        self.decoder = {i: s for s, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.start_token, self.end_token = self.encoder[START], self.encoder[END]
        self.vocab_size = len(vocab)  # 49408
        self._pattern = regex.compile(PATTERN, regex.IGNORECASE)
        self._cache: dict[str, tuple[str, ...]] = {}

    def bpe(self, word: str) -> tuple[str, ...]:
        """Merge the lowest-ranked adjacent pair, everywhere left to right, until no pair is a merge."""
        if word not in self._cache:
            self._cache[word] = (word,) if word in (START, END) else self._merge(word)
        return self._cache[word]

    def _merge(self, word: str) -> tuple[str, ...]:
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            pair = min(itertools.pairwise(parts), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(parts)

    def clean(self, text: str) -> str:
        try:
            import ftfy
        except ImportError:
            raise GlideError("the CLIP tokenizer needs ftfy: pip install ftfy") from None
        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        return regex.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> list[int]:
        symbols = byte_symbols()
        ids = []
        for word in self._pattern.findall(self.clean(text)):
            word = "".join(symbols[b] for b in word.encode("utf-8"))
            ids.extend(self.encoder[p] for p in self.bpe(word))
        return ids

    def decode(self, ids: list[int]) -> str:
        byte_of = {s: b for b, s in byte_symbols().items()}
        out = bytearray()
        for i in ids:
            if i in (self.start_token, self.end_token):
                continue
            piece = self.decoder[i]
            word_end = piece.endswith("</w>")
            out += bytes(byte_of[c] for c in piece.removesuffix("</w>"))
            out += b" " if word_end else b""
        return out.decode("utf-8", errors="replace").strip()

    def padded(self, ids: list[int], context: int = 77) -> tuple[list[int], int]:
        """`[start] + ids[:context-2] + [end]`, right-padded with 0, and its length."""
        ids = [self.start_token, *ids[: context - 2], self.end_token]
        return ids + [0] * (context - len(ids)), len(ids)

    def __call__(self, prompts: str | list[str], context: int = 77) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (tokens [B, context], lengths [B]) as int64 tensors."""
        if isinstance(prompts, str):
            prompts = [prompts]
        rows = [self.padded(self.encode(p), context) for p in prompts]
        return (torch.tensor([r[0] for r in rows], dtype=torch.long).view(len(rows), context),
                torch.tensor([r[1] for r in rows], dtype=torch.long))


@functools.lru_cache(maxsize=None)
def get_clip_tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer()
