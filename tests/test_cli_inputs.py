"""A corpus of bad command lines: each must end in one line on stderr and exit status 2, with no traceback,
and leave nothing on disk. The cases run in-process through glide.cli.main (fast); a few run as real
processes too, to cover what only a real command line sees (bytes that are not UTF-8, the exit status)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from glide.cli import main
from helpers import make_official_checkpoint, write_options


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs for the corpus: a tiny model and broken variants of it, images good and bad, a run folder."""
    from safetensors.torch import load_file, save_file

    d = tmp_path_factory.mktemp("inputs")
    ckpt = make_official_checkpoint(d / "tiny.pt")
    opts = write_options(d / "opts.json")
    assert main(["convert", str(ckpt), "--kind", "base", "--options", str(opts), "--out", str(d / "model")]) == 0
    sd = load_file(str(d / "model" / "model.safetensors"))
    name = sorted(sd)[3]

    def variant(folder: str, weights: dict | None = None, config: str | None = None) -> None:
        (d / folder).mkdir()
        save_file(weights if weights is not None else sd, str(d / folder / "model.safetensors"))
        (d / folder / "config.json").write_text(config or (d / "model" / "config.json").read_text())

    variant("nan_model", {**sd, name: torch.full_like(sd[name], float("nan"))})
    variant("mismatched", {**{k: v for k, v in sd.items() if k != name}, "surprise.weight": torch.zeros(2)})
    variant("list_config", config="[1, 2, 3]")
    Image.new("RGB", (64, 64), "red").save(d / "red.png")
    Image.new("L", (64, 64), 0).save(d / "keep_all.png")  # a mask that repaints nothing
    Image.new("L", (10, 10), 255).save(d / "small_mask.png")
    png = (d / "red.png").read_bytes()
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    Image.new("L", (5000, 4000)).save(d / "huge.png")  # 20 MP: over the 16 MP cap, a few kB on disk
    (d / "five.txt").write_bytes(b"hello")
    (d / "list.json").write_text("[1, 2]")
    (d / "latin1.json").write_bytes(b'{"image_size": "\xe9"}')
    (d / "a_file").write_text("not a folder")
    (d / "notes").mkdir()
    (d / "notes" / "thesis.txt").write_text("precious")
    (d / "run" / "checkpoints").mkdir(parents=True)
    (d / "run" / "metrics.jsonl").write_text('{"step": 1}\n')
    return d


# Placeholders: {d} the fixture folder, {w} an empty folder the command may write into.
CASES = [
    # -- sample: numbers -----------------------------------------------------------------------------------
    (["sample", "x", "--steps", "1"], "from 2 to 1000"),
    (["sample", "x", "--steps", "0"], "positive"),
    (["sample", "x", "--steps", "-5"], "positive"),
    (["sample", "x", "--steps", "5000"], "from 2 to 1000"),
    (["sample", "x", "--steps", "ddim1"], "steps"),
    (["sample", "x", "--steps", "fastest"], "steps"),
    (["sample", "x", "--guidance-scale", "nan"], "finite"),
    (["sample", "x", "--guidance-scale", "inf"], "finite"),
    (["sample", "x", "--guidance-scale", "lots"], "expected a number"),
    (["sample", "x", "--temperature", "nan"], "finite"),
    (["sample", "x", "--clip-guidance-scale", "inf"], "finite"),
    (["sample", "x", "--clip-guidance-scale", "-1"], ">= 0"),
    (["sample", "x", "--clip-guidance-scale", "2", "--sampler", "dpm++2m"], "ddpm and ddim"),
    (["sample", "x", "--eta", "-1"], "from 0 to 1"),
    (["sample", "x", "--seed", str(2**64)], "2**64 - 1"),
    (["sample", "x", "--seed", "-1"], "2**64 - 1"),
    (["sample", "x", "--seed", "1.5"], "whole number"),
    (["sample", "x", "-n", "0"], "positive integer"),
    (["sample", "x", "--batch-size", "0"], "positive integer"),
    (["sample", "x", "--sampler", "euler"], "invalid choice"),
    (["sample", "x", "--guidance-interval", "2,1"], "0 <= LOW < HIGH"),
    (["sample", "x", "--guidance-interval", "0.3"], "LOW,HIGH"),
    (["inpaint", "{d}/red.png", "x", "--box", "0,0,8,8", "--guidance-interval", "a,b"], "LOW,HIGH"),
    (["sample", "x", "--guidance-reuse"], "guides every step; give one with --guidance-interval"),
    # -- sample: text, devices, output paths ------------------------------------------------------------------
    (["sample", "caf\udce9 au lait"], "not valid UTF-8"),
    (["sample", "x", "--device", "banana"], "banana"),
    (["sample", "x", "--device", "cuda:99"], "cuda:99"),
    (["sample", "x", "--device", "mps"] if not torch.backends.mps.is_available() else ["sample", "x", "--device", "mps:7"], "mps"),
    (["sample", "x", "--out", "{d}/a_file/x.png"], "is a file"),
    (["sample", "x", "--out", "{d}/notes"], "is a folder"),
    (["sample", "x", "--out", "{w}/x.xyz"], "unknown image format"),
    # -- models ----------------------------------------------------------------------------------------------------
    (["sample", "x", "--model", "/nonexistent/model"], "model not found"),
    (["sample", "x", "--model", "{d}/nan_model"], "NaN or infinite"),
    (["sample", "x", "--model", "{d}/mismatched"], "surprise.weight"),
    (["sample", "x", "--model", "{d}/list_config"], "not a glide model folder"),
    (["sample", "x", "--model", "{d}/five.txt"], "is a file, not a glide model folder"),
    # -- inpaint, upsample, info: images ---------------------------------------------------------------------------
    (["inpaint", "{d}/red.png", "a hat"], "exactly one of --mask"),
    (["inpaint", "{d}/red.png", "a hat", "--box", "10,10,5,5"], "not inside"),
    (["inpaint", "{d}/truncated.png", "a hat", "--box", "1,1,9,9"], "cannot read"),
    (["inpaint", "{d}/huge.png", "a hat", "--box", "1,1,9,9"], "over the limit"),
    (["inpaint", "{d}/red.png", "a hat", "--mask", "{d}/five.txt"], "cannot read mask"),
    (["inpaint", "{d}/red.png", "a hat", "--mask", "{d}/keep_all.png"], "nothing to repaint"),
    (["inpaint", "{d}/red.png", "a hat", "--mask", "{d}/small_mask.png"], "differs from the image"),
    (["inpaint", "{d}/red.png", "a hat", "--box", "1,1,9,9", "--eta", "1.5"], "from 0 to 1"),
    (["serve", "--port", "70000"], "65535"),
    (["upsample", "{d}/missing.png", "x"], "image not found"),
    (["upsample", "{d}/notes", "x"], "is a folder"),
    (["info", "{d}/red.png"], "no glide settings"),
    (["info", "{d}/five.txt"], "cannot read"),
    # -- convert / export: never destroy a folder ------------------------------------------------------------------
    (["convert", "{d}/five.txt", "--kind", "base", "--out", "{w}/m"], "not a PyTorch checkpoint"),
    (["convert", "{d}/tiny.pt", "--kind", "base", "--options", "{d}/list.json", "--out", "{w}/m"], "JSON object"),
    (["convert", "{d}/tiny.pt", "--kind", "base", "--options", "{d}/latin1.json", "--out", "{w}/m"], "not valid JSON"),
    (["convert", "{d}/tiny.pt", "--kind", "base", "--out", "{d}/notes"], "not a glide model folder"),
    (["convert", "{d}/tiny.pt", "--kind", "base", "--out", "{d}/run"], "training run folder"),
    (["export", "{d}/run", "--out", "{d}/run"], "run folder"),
    (["export", "{d}/run", "--out", "{d}/run/model"], "run folder"),
    (["export", "{d}/run", "--out", "{d}/notes"], "not a glide model folder"),
    # -- eval, train ---------------------------------------------------------------------------------------------
    (["eval", "-n", "0"], "positive integer"),
    (["eval", "coco", "--images", "{d}/notes"], "--captions"),
    (["eval", "--data", "{d}", "coco", "--captions", "c.json", "--images", "{d}/notes"], "not --data"),
    (["eval", "sweep", "--guidance-scales", "1,nan"], "finite"),
    (["train", "--config", "no-such-config"], "packaged configs"),
    (["train", "--lr", "nan"], "finite"),
    (["frobnicate"], "invalid choice"),
]


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input(files, tmp_path, capsys, argv, message):
    work = tmp_path / "w"
    work.mkdir()
    argv = [a.format(d=files, w=work) for a in argv]
    if argv[0] in ("sample", "inpaint", "upsample") and "--out" not in argv:
        argv += ["--out", str(work / "out.png")]
    before = _tree(files)
    rc = _run(argv + (["-q"] if argv[0] in ("sample", "inpaint", "upsample") else []))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert list(work.iterdir()) == []  # nothing written
    assert _tree(files) == before  # and nothing changed or deleted


def _subprocess(*args: bytes | str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glide", *args], capture_output=True)


def test_real_command_lines(tmp_path):
    """What only a real process sees: undecodable argv bytes, and the exit status itself."""
    cases = [
        ([b"sample", b"caf\xe9", b"--out", os.fsencode(tmp_path / "a.png")], b"not valid UTF-8"),
        (["sample", "x", "--steps", "1", "--out", str(tmp_path / "b.png")], b"from 2 to 1000"),
        (["sample", "x", "--seed", str(2**64), "--out", str(tmp_path / "c.png")], b"2**64 - 1"),
    ]
    for args, message in cases:
        p = _subprocess(*args)
        assert p.returncode == 2 and message in p.stderr, p.stderr
        assert b"Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_is_refused_before_sampling(tmp_path, capsys, monkeypatch):
    """(Simulated: this test may run as root, which writes anywhere.)"""
    import glide.cli

    monkeypatch.setattr(glide.cli.os, "access", lambda path, mode: Path(path) != tmp_path)
    assert _run(["sample", "x", "--out", str(tmp_path / "x.png"), "-q"]) == 2
    assert "not writable" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_convert_replaces_its_own_model_folder_and_keeps_others(files, tmp_path, capsys):
    """--out may be a previous model folder (replaced whole); another folder only with --force."""
    out = tmp_path / "m"
    args = ["convert", str(files / "tiny.pt"), "--kind", "base", "--options", str(files / "opts.json"), "--out", str(out)]
    assert _run(args) == 0
    (out / "stale.txt").write_text("from the previous model")
    assert _run(args) == 0  # a model folder: replaced atomically, nothing of the old one left
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    assert _run(args[:-1] + [str(mine)]) == 2
    assert (mine / "keep.txt").read_text() == "x"
    assert _run(args[:-1] + [str(mine), "--force"]) == 0
    assert json.loads((mine / "config.json").read_text())["format"] == "glide-diffusion"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folders left behind
