"""Tiny random checkpoints in the official layout, for end-to-end tests."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from glide import official

# A tiny text2im network in official hyperparameter names (GPT-2 vocabulary, like the real ones).
TINY_OPTIONS = dict(
    image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16",
    num_head_channels=32, text_ctx=16, xf_width=32, xf_layers=1, xf_heads=2, dropout=0.0,
)


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere (the default init zeroes output layers, which makes outputs trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
                p.copy_(base + 0.05 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)


def make_official_checkpoint(path: Path, options: dict = TINY_OPTIONS, seed: int = 0, **extra) -> Path:
    opts = {**options, **extra}
    model = official.load_model(None, **opts)
    randomize(model, seed)
    torch.save(model.official_state_dict(), path)
    return path


def write_options(path: Path, options: dict = TINY_OPTIONS) -> Path:
    path.write_text(json.dumps(options))
    return path


def run_cli(*args, cwd=None, check=False) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "glide", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"glide {' '.join(map(str, args))} failed:\n{p.stdout}\n{p.stderr}")
    return p


def free_port() -> int:
    """A TCP port nobody listens on right now (for servers and torchrun rendezvous in tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc: subprocess.Popen, url: str, timeout: float, describe) -> None:
    """Poll `url` until it answers; fail the test with `describe()` (e.g. the server's log) if the process exits
    or `timeout` seconds pass first."""
    import time
    import urllib.request

    import pytest

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(describe())
            time.sleep(0.2)


def make_toy_data(d: Path) -> Path:
    """Coloured squares on white, captioned by colour and position: d/toy.npz."""
    rng = np.random.default_rng(0)
    names = ["red", "green", "blue", "yellow"]
    colours = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 20)]
    imgs, caps = [], []
    for i in range(64):
        k, left = i % 4, bool(rng.integers(0, 2))
        im = np.full((32, 32, 3), 255, np.uint8)
        x = 2 if left else 18
        im[8:22, x : x + 12] = colours[k]
        imgs.append(im)
        caps.append(f"a {names[k]} square on the {'left' if left else 'right'}")
    np.savez_compressed(d / "toy.npz", images=np.stack(imgs), captions=np.array(caps), split=np.array(["train"] * 64))
    return d / "toy.npz"
