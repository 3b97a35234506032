"""Quality figures on simple image features (no pretrained network exists offline):

    prompt following   generate each name at fixed seeds; is the nearest reference image the prompted one
                       (exact) or one that shares its main word (word)? top-1 and top-5
    precision/recall   k-NN manifolds of real and generated features (Kynkäänniemi et al., 2019)
    Fréchet distance   between Gaussians fitted to real and generated features (FID-style, on our features)
    PSNR               reconstruction quality of a VAE (training.vae.psnr)

Features: the image at 16 x 16 (area averaging), RGB in [0, 1], flattened (768 numbers): colour and layout,
which is what tells emoji apart at 64 px.

    python -m aigc_desktop.training.evaluate diffusion --model DIR --data DIR [--names FILE] [--seeds 4]
    python -m aigc_desktop.training.evaluate stylegan --model DIR --data DIR [--count 1000]
    python -m aigc_desktop.training.evaluate vae --model DIR --data DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from aigc_desktop.training.dataset import FolderData, load_folder, main_word, word_counts

FEATURE_SIZE = 16


def features(images: np.ndarray | Sequence[Image.Image]) -> np.ndarray:
    """N x 768 float32 features of uint8 N x H x W x 3 arrays or PIL images."""
    if not isinstance(images, np.ndarray):
        images = np.stack([np.asarray(im.convert("RGB")) for im in images])
    out = []
    for a in images:
        small = Image.fromarray(a).resize((FEATURE_SIZE, FEATURE_SIZE), Image.Resampling.BOX)
        out.append(np.asarray(small, dtype=np.float32).reshape(-1) / 255.0)
    return np.stack(out)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a and b (|a|^2 - 2ab + |b|^2: no N x M x D temporary)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    d2 = (a ** 2).sum(1)[:, None] - 2 * a @ b.T + (b ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0))


def nearest(queries: np.ndarray, reference: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the k nearest reference rows (Euclidean) for each query row."""
    return np.argsort(pairwise_distances(queries, reference), axis=1)[:, :k]


@dataclass
class PromptScore:
    names: int
    images: int
    top1_exact: float
    top5_exact: float
    top1_word: float
    top5_word: float
    chance_exact: float
    per_name: dict[str, dict[str, float]] = field(default_factory=dict)

    def line(self) -> str:
        return (f"top-1 {self.top1_exact:.2f} / top-5 {self.top5_exact:.2f} exact; top-1 {self.top1_word:.2f} / "
                f"top-5 {self.top5_word:.2f} main word ({self.names} names x {self.images // max(1, self.names)} "
                f"seeds; chance {self.chance_exact:.4f})")


def prompt_following(generate: Callable[[list[str], int], list[Image.Image]], names: Sequence[str],
                     reference: FolderData, seeds: int = 4, k: int = 5) -> PromptScore:
    """`generate(prompts, seed)` returns one image per prompt; each name is drawn at seeds 0..seeds-1."""
    ref_feats = features(reference.images)
    counts = word_counts(reference.captions)
    ref_words = [main_word(c, counts) for c in reference.captions]
    hits = {"top1_exact": 0, "top5_exact": 0, "top1_word": 0, "top5_word": 0}
    per_name: dict[str, dict[str, float]] = {}
    names = list(names)
    for seed in range(seeds):
        images = generate(names, seed)
        idx = nearest(features(images), ref_feats, k)
        for name, row in zip(names, idx):
            word = main_word(name, counts)
            exact = [reference.captions[j] == name for j in row]
            same = [e or ref_words[j] == word for e, j in zip(exact, row)]
            result = {"top1_exact": exact[0], "top5_exact": any(exact), "top1_word": same[0], "top5_word": any(same)}
            for key, value in result.items():
                hits[key] += int(value)
                per_name.setdefault(name, {}).setdefault(key, 0.0)
                per_name[name][key] += value / seeds
    total = len(names) * seeds
    return PromptScore(names=len(names), images=total, chance_exact=1.0 / max(1, len(set(reference.captions))),
                       per_name=per_name, **{k_: v / max(1, total) for k_, v in hits.items()})


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision (fakes inside the real manifold) and recall (reals inside the fake manifold)."""

    def radii(x: np.ndarray) -> np.ndarray:
        return np.sort(pairwise_distances(x, x), axis=1)[:, k]  # column 0 is the point itself

    def inside(points: np.ndarray, manifold: np.ndarray, r: np.ndarray) -> float:
        return float((pairwise_distances(points, manifold) <= r[None, :]).any(axis=1).mean())

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), with the trace of the square root taken from the
    eigenvalues of the symmetric S1^1/2 S2 S1^1/2 (fast and stable for rank-deficient covariances)."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


# ------------------------------------------------------------------------------------ model evaluations


def diffusion_generator(model_dir: str, steps: int = 20, cfg: float = 4.0, size: int = 0):
    """generate(prompts, seed) for a diffusers folder, loaded the way the app loads users' models."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model_dir, torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False, feature_extractor=None,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    factor = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    size = size or pipe.unet.config.sample_size * factor

    def generate(prompts: list[str], seed: int) -> list[Image.Image]:
        gens = [torch.Generator("cpu").manual_seed(seed * 100_003 + i) for i in range(len(prompts))]
        out = []
        for i in range(0, len(prompts), 32):
            out += pipe(list(prompts[i:i + 32]), height=size, width=size, num_inference_steps=steps,
                        guidance_scale=cfg, generator=gens[i:i + 32]).images
        return out

    return generate


def labeled_grid(generate: Callable[[list[str], int], list[Image.Image]], prompts: Sequence[str],
                 seeds: int = 4, label_width: int = 112) -> Image.Image:
    """One row per prompt (its text on the left), one column per seed: the model card's sample sheet."""
    from PIL import ImageDraw

    rows = [generate(list(prompts), seed) for seed in range(seeds)]
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (label_width + seeds * w, len(prompts) * h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, prompt in enumerate(prompts):
        draw.text((4, i * h + h // 2 - 6), prompt[:18], fill=(0, 0, 0))
        for j in range(seeds):
            sheet.paste(rows[j][i], (label_width + j * w, i * h))
    return sheet


def _read_names(path: str | None, fallback: list[str]) -> list[str]:
    if not path:
        return fallback
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc_desktop.training.evaluate")
    parser.add_argument("kind", choices=("diffusion", "stylegan", "vae"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="reference images (the training folder)")
    parser.add_argument("--names", help="diffusion: file of names to prompt, one a line (default: all captions)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=4.0)
    parser.add_argument("--count", type=int, default=1000, help="stylegan: images to generate")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--grid", help="diffusion: write a sample sheet (prompts x seeds) to this PNG")
    parser.add_argument("--grid-prompts", default="red apple,cat face,sun,heart",
                        help="diffusion: comma-separated prompts of the sample sheet")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    result: dict
    if args.kind == "diffusion":
        reference = load_folder(args.data, 64)
        names = _read_names(args.names, sorted(set(reference.captions)))
        generate = diffusion_generator(args.model, args.steps, args.cfg)
        if args.grid:
            prompts = [p.strip() for p in args.grid_prompts.split(",") if p.strip()]
            labeled_grid(generate, prompts, args.seeds).save(args.grid)
        score = prompt_following(generate, names, reference, args.seeds)
        print(score.line())
        result = asdict(score)
    elif args.kind == "stylegan":
        from aigc_desktop.training.stylegan import generate_images

        images = generate_images(args.model, args.count)
        reference = load_folder(args.data, images[0].width)
        real, fake = features(reference.images), features(images)
        p, r = precision_recall(real, fake)
        fd = frechet_distance(real, fake)
        print(f"precision {p:.3f} recall {r:.3f} Fréchet distance (16x16 RGB features) {fd:.3f}")
        # For scale: the same figures for two random halves of the real images against each other.
        order = np.random.RandomState(0).permutation(len(real))
        half_a, half_b = real[order[: len(real) // 2]], real[order[len(real) // 2:]]
        bp, br = precision_recall(half_a, half_b)
        bfd = frechet_distance(half_a, half_b)
        print(f"baseline (real half vs real half): precision {bp:.3f} recall {br:.3f} Fréchet distance {bfd:.3f}")
        result = {"precision": p, "recall": r, "frechet": fd, "count": len(images),
                  "baseline": {"precision": bp, "recall": br, "frechet": bfd}}
    else:
        from aigc_desktop.engines.vae_morph import load_morph_vae
        from aigc_desktop.training.vae import psnr

        net = load_morph_vae(args.model)
        reference = load_folder(args.data, net.config.resolution)
        x = reference.to_tensor()
        with torch.no_grad():
            values = torch.cat([psnr(net.decode(net.encode(x[i:i + 64])[0]).clamp(-1, 1), x[i:i + 64])
                                for i in range(0, len(x), 64)])
        print(f"PSNR {values.mean():.2f} dB over {len(x)} images")
        result = {"psnr_db": float(values.mean()), "images": len(x)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
