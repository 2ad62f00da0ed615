"""Turning captions into token ids."""

from .tokenizer import Tokenizer, get_tokenizer

__all__ = ["Tokenizer", "get_tokenizer"]
