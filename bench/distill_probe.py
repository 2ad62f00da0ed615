"""Has a guidance-distilled student learned its teacher's guidance? On held-out images noised to a few levels, the
student's one-row prediction at scale w against the teacher's classifier-free-guided prediction at w (the
distillation target), next to what an untrained student gives (the teacher's conditional prediction), and
whether the student's change with w points where the target's does.

    python bench/distill_probe.py runs-exported/distilled --teacher bundled:base --data data/emoji

Prints one JSON line per scale: eps MSE against the target for the student and for the teacher's conditional
row (`*_v` lines weight it by 1 / alpha_bar, the v-space error a v model is trained on), and, for w > 1, the cosine
between student(w) - student(1) and target(w) - target(1) and the ratio of their norms (a student that has
learned guidance: cosine near 1, ratio near 1; one that has not: cosine near 0). Text-to-image inputs (nothing
kept for inpainting), the same images, timesteps and noise for every call; the precision is each pipeline's default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from glide.diffusion import Diffusion
from glide.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from denoising_error import heldout  # noqa: E402


@torch.no_grad()
def probe(student: Pipeline, teacher: Pipeline, x0: torch.Tensor, captions: list[str], scales: list[float],
          timesteps: list[int], batch_size: int = 32) -> list[dict]:
    d = Diffusion.from_schedule(teacher.model.cfg.noise_schedule, teacher.model.cfg.diffusion_steps)
    s_fn, t_fn = student._model_fn(student.model), teacher._model_fn(teacher.model)
    g = torch.Generator().manual_seed(1)
    i = torch.tensor(timesteps).repeat(len(x0) // len(timesteps) + 1)[: len(x0)]
    xt = d.q_sample(x0, i, torch.randn(x0.shape, generator=g))
    t, ab = d.model_timesteps(i), d.extract("alphas_cumprod", i, 1).flatten()
    stud: dict[float, list] = {w: [] for w in scales}
    target: dict[float, list] = {w: [] for w in scales}
    cond_rows = []
    for s in range(0, len(x0), batch_size):
        sl = slice(s, s + batch_size)
        text, empty = teacher.encode(captions[sl], teacher.model), teacher.encode([""] * len(xt[sl]), teacher.model)
        cond = t_fn(xt[sl], t[sl], text=text).float()[:, :3]
        uncond = t_fn(xt[sl], t[sl], text=empty).float()[:, :3]
        cond_rows.append(cond)
        s_text = student.encode(captions[sl], student.model)
        for w in scales:
            target[w].append(uncond + w * (cond - uncond))
            scale = torch.full((len(xt[sl]),), w)
            stud[w].append(s_fn(xt[sl], t[sl], text=s_text, guidance=scale).float()[:, :3])
    cond = torch.cat(cond_rows)
    stud = {w: torch.cat(v) for w, v in stud.items()}
    target = {w: torch.cat(v) for w, v in target.items()}
    rows = []
    for w in scales:
        e_s = ((stud[w] - target[w]) ** 2).mean((1, 2, 3))
        e_c = ((cond - target[w]) ** 2).mean((1, 2, 3))
        row = {"scale": w, "student_mse": round(e_s.mean().item(), 6), "teacher_cond_mse": round(e_c.mean().item(), 6),
               "student_mse_v": round((e_s / ab).mean().item(), 5), "teacher_cond_mse_v": round((e_c / ab).mean().item(), 5)}
        if w != 1.0 and 1.0 in stud:
            ds, dt = (stud[w] - stud[1.0]).flatten(), (target[w] - target[1.0]).flatten()
            row["delta_cosine"] = round(torch.nn.functional.cosine_similarity(ds, dt, dim=0).item(), 3)
            row["delta_norm_ratio"] = round((ds.norm() / dt.norm()).item(), 3)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("student", help="a guidance-distilled model folder")
    ap.add_argument("--teacher", default="bundled:base")
    ap.add_argument("--data", default="data/emoji")
    ap.add_argument("--n", type=int, default=64, help="held-out images")
    ap.add_argument("--scales", default="1,3,5")
    ap.add_argument("--timesteps", default="200,400,600,800", help="spread over the images in turn")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    student, teacher = Pipeline.from_pretrained(args.student), Pipeline.from_pretrained(args.teacher)
    if not student.cfg.distilled_guidance:
        raise SystemExit(f"{args.student} is not guidance-distilled (its config has no distilled_guidance)")
    x0, captions = heldout(args.data, teacher.model.cfg.unet.image_size, args.n)
    scales = sorted({1.0, *(float(v) for v in args.scales.split(","))})
    for row in probe(student, teacher, x0, captions, scales, [int(v) for v in args.timesteps.split(",")],
                     args.batch_size):
        print(json.dumps({"student": args.student, "teacher": args.teacher, "n": len(x0), **row}), flush=True)


if __name__ == "__main__":
    main()
