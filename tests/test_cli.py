"""End-to-end: a tiny random checkpoint in the official format, converted, then sampled from the CLI."""

import numpy as np
import pytest
from PIL import Image

from helpers import make_official_checkpoint, run_cli, write_options


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    ckpt = make_official_checkpoint(d / "tiny.pt")
    out = d / "tiny-model"
    p = run_cli("convert", ckpt, "--kind", "base", "--options", write_options(d / "opts.json"), "--out", out, check=True)
    assert "wrote" in p.stdout
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    return out


def test_sample_grid_is_deterministic(converted, tmp_path):
    args = ["sample", "a red apple", "--model", converted, "-n", "3", "--steps", "4", "--seed", "7", "-q"]
    run_cli(*args, "--out", tmp_path / "a.png", check=True)
    run_cli(*args, "--out", tmp_path / "b.png", check=True)
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert a.shape == (2 + 2 * 34, 2 + 2 * 34, 3)  # 2x2 grid of 32 px images, 2 px padding
    assert np.array_equal(a, b)
    for i in range(3):
        im = np.asarray(Image.open(tmp_path / f"a_{i:03d}.png"))
        assert im.shape == (32, 32, 3) and im.std() > 1  # not blank
        assert (tmp_path / f"a_{i:03d}.txt").read_text() == "a red apple\n"  # a sample folder for glide rate
    other = tmp_path / "c.png"
    run_cli(*args[:-3], "--seed", "8", "-q", "--out", other, check=True)
    assert not np.array_equal(a, np.asarray(Image.open(other)))


def test_ddim_and_empty_prompt(converted, tmp_path):
    p = run_cli("sample", "", "--model", converted, "-n", "1", "--steps", "ddim4", "--sampler", "ddim", "-q",
                "--out", tmp_path / "u.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "u.png").is_file()
    p = run_cli("sample", "a red apple", "--model", converted, "-n", "1", "--steps", "5", "--sampler", "dpm++2m",
                "-q", "--out", tmp_path / "d.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "d.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--steps", "-5"], "positive"),
    (["--steps", "0"], "positive"),
    (["--guidance-scale", "lots"], "invalid float value"),
    (["--model", "/nonexistent/model"], "model not found"),
    (["-n", "0"], "positive integer"),
])
def test_bad_sample_input(converted, tmp_path, args, message):
    base = ["sample", "x", "--model", converted, "--out", tmp_path / "bad.png", "-q"]
    p = run_cli(*base, *args)
    assert p.returncode == 2
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "bad.png").exists()


def test_hostile_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    import torch

    torch.save({"weight": Evil()}, tmp_path / "evil.pt")
    p = run_cli("convert", tmp_path / "evil.pt", "--kind", "base", "--out", tmp_path / "out")
    assert p.returncode == 2
    assert "refused" in p.stderr and "Traceback" not in p.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_convert_errors(tmp_path):
    ckpt = make_official_checkpoint(tmp_path / "tiny.pt")
    opts = write_options(tmp_path / "o.json")
    # truncated file
    data = ckpt.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    p = run_cli("convert", tmp_path / "trunc.pt", "--kind", "base", "--options", opts, "--out", tmp_path / "o1")
    assert p.returncode == 2 and "truncated" in p.stderr and not (tmp_path / "o1").exists()
    # wrong kind: an inpaint model needs more input channels
    p = run_cli("convert", ckpt, "--kind", "base-inpaint", "--options", opts, "--out", tmp_path / "o2")
    assert p.returncode == 2 and "does not match" in p.stderr and not (tmp_path / "o2").exists()
    # the right kind but without --options (official sizes): missing/mismatched keys named
    p = run_cli("convert", ckpt, "--kind", "base", "--out", tmp_path / "o3")
    assert p.returncode == 2 and "does not match" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    # an extra key
    import torch

    sd = torch.load(ckpt, weights_only=True)
    sd["surprise.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "extra.pt")
    p = run_cli("convert", tmp_path / "extra.pt", "--kind", "base", "--options", opts, "--out", tmp_path / "o4")
    assert p.returncode == 2 and "unexpected key" in p.stderr and "surprise.weight" in p.stderr
    # missing file
    p = run_cli("convert", tmp_path / "nope.pt", "--kind", "base", "--out", tmp_path / "o5")
    assert p.returncode == 2 and "not found" in p.stderr
