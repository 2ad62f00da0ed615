"""scripts/pack_train_data.py: the training data as it travels to a device machine (docs/models.md)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pack_train_data.py"


def write_npz(path: Path, styles: list[str]) -> np.ndarray:
    captions = [f"thing {i}, {style}" for i, style in enumerate(styles)]
    images = np.arange(len(styles) * 4 * 4 * 3, dtype=np.uint8).reshape(len(styles), 4, 4, 3)
    split = ["train"] * (len(styles) - 1) + ["heldout_pair"]
    np.savez(path, images=images, captions=np.array(captions), split=np.array(split),
             captions_alt=json.dumps([[f"alt {i}"] for i in range(len(styles))]))
    return images


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_only_the_train_split_travels_and_unpacks_unchanged(tmp_path):
    styles = ["twemoji style", "openmoji style", "openmoji line art", "noto emoji style", "twemoji style"]
    images = write_npz(tmp_path / "d.npz", styles)
    assert run("pack", str(tmp_path / "d.npz"), str(tmp_path / "packed")).returncode == 0
    assert run("unpack", str(tmp_path / "packed"), str(tmp_path / "out.npz")).returncode == 0
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_array_equal(z["images"], images[:4])  # the held-out image stays behind
        assert list(z["captions"]) == [f"thing {i}, {s}" for i, s in enumerate(styles[:4])]
        assert json.loads(str(z["captions_alt"])) == [["alt 0"], ["alt 1"], ["alt 2"], ["alt 3"]]


def test_data_without_a_style_the_base_knows_is_refused(tmp_path):
    """A build on a machine without the Noto font has no Noto images: training the bundled base on it would
    unlearn that style, so packing stops and says how to get it (or how to go on anyway)."""
    write_npz(tmp_path / "d.npz", ["twemoji style", "openmoji style", "openmoji line art", "twemoji style"])
    p = run("pack", str(tmp_path / "d.npz"), str(tmp_path / "packed"))
    assert p.returncode != 0 and "noto" in p.stderr and "fonts-noto-color-emoji" in p.stderr
    assert not (tmp_path / "packed").exists()
    assert run("pack", str(tmp_path / "d.npz"), str(tmp_path / "packed"), "--allow-missing-styles").returncode == 0
    assert (tmp_path / "packed" / "meta.json.xz").is_file()
