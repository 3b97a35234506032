from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.training.dataset import FolderData
from aigc_desktop.training.evaluate import frechet_distance, precision_recall, prompt_following


def test_frechet_distance_matches_the_matrix_square_root_formula():
    from scipy import linalg

    rng = np.random.RandomState(0)
    a, b = rng.randn(300, 12), rng.randn(200, 12) * 1.3 + 0.2
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)


def test_precision_recall_of_a_collapsed_generator():
    rng = np.random.RandomState(1)
    real = rng.randn(200, 4)
    collapsed = real[:3].repeat(20, axis=0) + rng.randn(60, 4) * 0.01  # a few modes only
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.2
    assert precision_recall(real, real)[0] == pytest.approx(1.0)


def test_prompt_following_counts_exact_and_main_word_hits():
    colours = {"red apple": (220, 30, 30), "green apple": (40, 180, 40), "blue heart": (30, 60, 220),
               "cat face": (240, 200, 40)}
    images = np.stack([np.full((16, 16, 3), rgb, np.uint8) for rgb in colours.values()])
    reference = FolderData(images=images, captions=list(colours), files=[f"{i}.png" for i in range(4)])

    def generate(prompts, seed):  # a "model" that draws green for every apple and gets the rest right
        return [Image.new("RGB", (16, 16), colours["green apple"] if "apple" in p else colours[p]) for p in prompts]

    score = prompt_following(generate, ["red apple", "blue heart", "cat face"], reference, seeds=2)
    assert score.images == 6
    assert score.top1_exact == pytest.approx(2 / 3) and score.top1_word == pytest.approx(1.0)
    assert score.top5_exact == pytest.approx(1.0)
    assert score.per_name["red apple"]["top1_word"] == 1.0 and score.per_name["red apple"]["top1_exact"] == 0.0
    assert "top-1 0.67" in score.line()
