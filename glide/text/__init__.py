"""Turning captions into token ids."""

from .tokenizer import Tokenizer, fit_vocab, get_tokenizer

__all__ = ["Tokenizer", "fit_vocab", "get_tokenizer"]
