"""Sample-quality metrics over feature vectors: Frechet distance, precision/recall, CLIP score.

Features are [N, D] arrays (Inception pool3 for standard FID, or the noised CLIP's image embedding at t=0
for an FD that needs no outside weights). All statistics are computed in float64.
"""

from __future__ import annotations

import numpy as np
import torch


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least two feature vectors of shape [N, D], got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between two Gaussians (Heusel et al. 2017).

    Tr((S1 S2)^1/2) = Tr((A S2 A)^1/2) with A = S1^1/2: both square roots are of symmetric PSD matrices,
    so eigh is exact and stable where a general sqrtm of the non-symmetric S1 S2 needs fixes for
    complex round-off.
    """
    s1 = torch.as_tensor(sigma1, dtype=torch.float64)
    s2 = torch.as_tensor(sigma2, dtype=torch.float64)
    w, v = torch.linalg.eigh((s1 + s1.T) / 2)
    a = (v * w.clamp(min=0).sqrt()) @ v.T
    m = a @ s2 @ a
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    diff = torch.as_tensor(mu1, dtype=torch.float64) - torch.as_tensor(mu2, dtype=torch.float64)
    fd = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return float(fd.clamp(min=0))


def fd_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point (the sample's own manifold ball)."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    precision: share of generated samples inside the real manifold (fidelity);
    recall: share of real samples inside the generated manifold (coverage).
    """
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    if min(len(r), len(f)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples on each side")
    r_rad, f_rad = _knn_radii(r, k), _knn_radii(f, k)
    d = torch.cdist(f, r)  # [fake, real]
    precision = (d <= r_rad[None, :]).any(1).double().mean()
    recall = (d.T <= f_rad[None, :]).any(1).double().mean()
    return float(precision), float(recall)


def paired_precision_recall_test(real: np.ndarray, fake: np.ndarray, reference: np.ndarray, permutations: int = 1000,
                                  k: int = 3, seed: int = 0) -> dict[str, float]:
    """Is `fake` lower in precision or recall than `reference`, where fake[i] and reference[i] are paired (same
    caption, same noise)? A paired permutation test: if both settings sample alike, each pair's two members are
    exchangeable, so swapping a random half of the pairs draws from the null distribution of the difference. (A
    bootstrap would resample with replacement, and duplicated points shrink the k-NN radii that both measures use.)
    Returns both settings' values and one-sided p-values for "fake is lower"."""
    fake, reference = np.asarray(fake), np.asarray(reference)
    if fake.shape != reference.shape:
        raise ValueError(f"paired features must have one shape, got {fake.shape} and {reference.shape}")
    mine, theirs = precision_recall(real, fake, k), precision_recall(real, reference, k)
    observed = np.subtract(mine, theirs)
    rng = np.random.default_rng(seed)
    null = np.empty((permutations, 2))
    for j in range(permutations):
        swap = (rng.random(len(fake)) < 0.5)[:, None]
        null[j] = np.subtract(precision_recall(real, np.where(swap, reference, fake), k),
                              precision_recall(real, np.where(swap, fake, reference), k))
    p = ((null <= observed + 1e-12).sum(0) + 1) / (permutations + 1)
    return {"precision": mine[0], "precision_reference": theirs[0], "precision_p": float(p[0]),
            "recall": mine[1], "recall_reference": theirs[1], "recall_p": float(p[1]),
            "recall_null_std": float(null[:, 1].std())}


def clip_score(image_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """Mean of 100 * max(cos, 0) over matched (image, caption) pairs (Hessel et al. 2021, w = 1)."""
    a = torch.nn.functional.normalize(torch.as_tensor(np.asarray(image_emb), dtype=torch.float64), dim=-1)
    b = torch.nn.functional.normalize(torch.as_tensor(np.asarray(text_emb), dtype=torch.float64), dim=-1)
    return float(100 * (a * b).sum(-1).clamp(min=0).mean())


def psnr(a, b, peak: float = 255.0, per_image: bool = False):
    """Peak signal-to-noise ratio in dB of b against a (numpy arrays or tensors of any dtype, compared in float64;
    `peak` is the value range: 255 for uint8 images, 2 for [-1, 1]). One number, or one per leading index with
    `per_image`. Identical images give inf. For saved-PNG comparisons pass both through glide.images.to_uint8."""
    a, b = (np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64) for x in (a, b))
    mse = ((a - b) ** 2).mean(axis=tuple(range(1, a.ndim)) if per_image else None)
    with np.errstate(divide="ignore"):
        out = 10 * np.log10(peak**2 / mse)
    return out if per_image else float(out)


def drawn_colour(images: np.ndarray, white: int = 235, min_pixels: int = 21) -> np.ndarray:
    """Mean RGB of each image's drawn pixels (any channel below `white`: not the white ground of emoji art), [N, 3]
    from uint8 [N, H, W, 3]; white where an image draws fewer than `min_pixels`. The distance between a sample's and
    its real image's says whether a model keeps its captions' colours, which CLIP features see only weakly."""
    out = np.full((len(images), 3), 255.0)
    for i, im in enumerate(images.astype(np.float32)):
        drawn = (im < white).any(-1)
        if drawn.sum() >= min_pixels:
            out[i] = im[drawn].mean(0)
    return out


def inception_score(probs: np.ndarray, splits: int = 1) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), with p(y) the mean prediction.

    `probs` are [N, classes] class probabilities. As the original code, the images are cut into `splits`
    parts, the score computed on each, and the mean and standard deviation returned. It ranges from 1 (every
    image gets the same prediction, or none is confident) to the number of classes (confident and spread
    evenly over all of them).
    """
    p = torch.as_tensor(np.asarray(probs), dtype=torch.float64)
    if p.ndim != 2 or len(p) < splits or splits < 1:
        raise ValueError(f"need [N, classes] probabilities with N >= splits, got {tuple(p.shape)} and splits={splits}")
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)
        # 0 * log 0 = 0: classes with no probability contribute nothing
        kl = torch.where(part > 0, part * (part.clamp_min(1e-300).log() - marginal.clamp_min(1e-300).log()), 0.0)
        scores.append(float(kl.sum(1).clamp(min=0).mean().exp()))  # KL >= 0; clamp float round-off
    s = np.asarray(scores)
    return float(s.mean()), float(s.std())


def softmax_probs(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), dim=-1).numpy()
