"""The wheel on its own: build it, install it with --no-deps into a fresh virtual environment that sees this
environment's third-party packages (but not the editable glide), and sample with CLIP guidance offline. This
catches what an editable install hides: a data file (tokenizer vocabulary, weights, configs) left out of the
wheel, or a module that only imports from a checkout."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _copy_source(dst: Path) -> Path:
    """The files a build reads, copied, so the build writes nothing into the checkout."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "configs", dst / "configs")
    shutil.copytree(ROOT / "glide", dst / "glide", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_wheel_installs_alone_and_samples_with_clip_guidance(tmp_path):
    (tmp_path / "src").mkdir()
    src = _copy_source(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("glide_diffusion-*.whl"))

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # --ignore-installed: pip runs from this environment, where the editable glide counts as installed.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                    "--ignore-installed", "-q", str(wheel)], check=True, capture_output=True, env=env)
    # The project's dependencies from this environment: a plain path line, so this environment's own .pth
    # files (the editable glide among them) are not processed there.
    (site / "zz_project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", NO_PROXY="*", http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9")  # offline: any network access would fail
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True)
    where = subprocess.run([py, "-c", "import glide, glide.cli; print(glide.__file__)"], **run)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout  # the wheel, not the checkout

    glide = env_dir / "bin" / "glide"
    p = subprocess.run([glide, "sample", "red apple, twemoji style", "--clip-guidance-scale", "2", "--steps", "2",
                        "-n", "1", "--seed", "0", "-q", "--out", "apple.png"], **run)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "apple.png").is_file()
    info = subprocess.run([glide, "info", "apple.png"], **run)
    assert "clip_guidance_scale: 2" in info.stdout and "sampler: ddpm" in info.stdout, info.stdout

    # The licence files, model cards and configs are in the installed package.
    pkg = site / "glide"
    for role in ("base", "upsampler", "clip"):
        assert (pkg / "weights" / role / "NOTICE").is_file() and (pkg / "weights" / role / "MODEL_CARD.md").is_file()
    assert (pkg / "weights" / "base" / "prompts.txt").is_file()  # the web page's example captions
    assert (pkg / "text" / "data" / "vocab.bpe").is_file() and (pkg / "clip" / "data" / "NOTICE").is_file()
    assert (pkg / "configs" / "emoji-base.toml").is_file() and not (pkg / "configs").is_symlink()
    version = subprocess.run([glide, "--version"], **run)
    assert version.stdout.startswith("glide ") and version.returncode == 0
