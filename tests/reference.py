"""Helpers to read the reference fixtures produced by the official code."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import FIXTURES


def manifest(case: str) -> dict:
    return json.loads((FIXTURES / case / "manifest.json").read_text())


def io(case: str) -> dict:
    return load_file(str(FIXTURES / case / "io.safetensors"))


def state_dict(case_dir: Path, weights: dict) -> dict:
    """Official-layout state dict; the vocabulary tables are stored as their used rows only."""
    sd = load_file(str(case_dir / weights["file"]))
    for key, sp in weights.get("sparse", {}).items():
        t = load_file(str(case_dir / sp["file"]))
        full = torch.zeros(sp["shape"], dtype=torch.float32)
        full[t["rows"]] = t["values"]
        sd[key] = full
    return {k: sd[k] for k in weights["key_order"]}


def model_cases() -> list[str]:
    index = json.loads((FIXTURES / "index.json").read_text())
    return [c["path"] for c in index["cases"] if c["path"].startswith("models/")]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rel: float, what: str = ""):
    scale = expected.abs().max().item()
    err = (actual.double() - expected.double()).abs().max().item()
    assert err <= rel * max(scale, 1e-12), f"{what}: max abs error {err:.3g} > {rel} x max|ref| {scale:.3g}"
