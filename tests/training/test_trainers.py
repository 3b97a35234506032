"""Few-step smoke tests of each trainer on generated shapes, exact resume, and loading what they export
through the app's own loaders."""

from __future__ import annotations

import json

import pytest
import torch

from aigc_desktop.core.detect import identify
from aigc_desktop.core.errors import CancelRequested, UserError
from aigc_desktop.training.common import Hooks, load_checkpoint
from aigc_desktop.training.registry import make_config, trainer_class


def run(kind: str, hooks: Hooks | None = None, **options):
    options.setdefault("threads", 1)
    options.setdefault("device", "cpu")
    config = make_config(kind, **options)
    return trainer_class(kind)(config, hooks).run()


def tensors(state) -> dict[str, torch.Tensor]:
    """Every tensor of a (nested) state dict, by path."""
    out = {}

    def walk(prefix, value):
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)

    walk("", state)
    return out


MORPH = dict(arch="morph", resolution=16, batch=4, latent_dim=8, channels="8,16", sample_every=2,
             checkpoint_every=2, log_every=1)


def test_morph_vae_trains_exports_and_resumes_exactly(shapes_dir, tmp_path):
    folder = run("vae", data=str(shapes_dir), out=str(tmp_path / "a"), steps=4, **MORPH)
    assert identify(folder).kind == "vae_morph"
    run("vae", data=str(shapes_dir), out=str(tmp_path / "b"), steps=2, **MORPH)
    run("vae", data=str(shapes_dir), out=str(tmp_path / "b"), steps=4, resume=True, **MORPH)
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert a["step"] == b["step"] == 4
    ta, tb = tensors({k: a[k] for k in ("models", "optimizers", "emas", "rng")}), \
        tensors({k: b[k] for k in ("models", "optimizers", "emas", "rng")})
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key
    losses = [json.loads(line) for line in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "b" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]

    from aigc_desktop.engines.vae_morph import load_morph_vae, slerp

    net = load_morph_vae(folder)
    x = torch.zeros(2, 3, 16, 16)
    mu, _ = net.encode(x)
    assert mu.shape == (2, 8)
    mid = net.decode(slerp(mu[:1], mu[1:], 0.5))
    assert mid.shape == (1, 3, 16, 16) and float(mid.abs().max()) <= 1


def test_existing_run_needs_resume_and_bad_options_are_one_line(shapes_dir, tmp_path):
    run("vae", data=str(shapes_dir), out=str(tmp_path), steps=1, **{**MORPH, "sample_every": 0})
    with pytest.raises(UserError, match="--resume"):
        run("vae", data=str(shapes_dir), out=str(tmp_path), steps=2, **MORPH)
    with pytest.raises(UserError, match="Unknown option"):
        make_config("vae", data="x", out="y", wings=3)
    with pytest.raises(UserError, match="cannot read"):
        make_config("vae", data="x", out="y", steps="many")
    with pytest.raises(UserError, match="Resolution"):
        make_config("stylegan", data="x", out="y", resolution=48)


def test_cancel_saves_a_checkpoint_to_resume_from(shapes_dir, tmp_path):
    steps = []
    hooks = Hooks(step=lambda s, t, losses: steps.append(s), cancelled=lambda: len(steps) >= 2)
    with pytest.raises(CancelRequested):
        run("vae", hooks, data=str(shapes_dir), out=str(tmp_path), steps=10, **MORPH)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2
    assert (tmp_path / "model" / "vae_morph.json").is_file()


def test_kl_vae_exports_a_diffusers_autoencoder(shapes_dir, tmp_path):
    from diffusers import AutoencoderKL

    folder = run("vae", data=str(shapes_dir), out=str(tmp_path), steps=2, arch="kl", resolution=16, batch=2,
                 channels="8,16", sample_every=0)
    vae = AutoencoderKL.from_pretrained(str(folder))
    assert vae.config.scaling_factor > 0 and vae.config.block_out_channels == [8, 16]
    assert vae.encode(torch.zeros(1, 3, 16, 16)).latent_dist.mean.shape == (1, 4, 8, 8)  # factor 2
    assert json.loads((folder / "training.json").read_text())["trained_steps"] == 2


def test_diffusion_trains_and_loads_through_the_app(shapes_dir, tmp_path):
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.engines.diffusion.engine import DiffusionEngine

    samples = []
    folder = run("diffusion", Hooks(sample=lambda s, image: samples.append(image)), data=str(shapes_dir),
                 out=str(tmp_path), steps=2, resolution=64, batch=2, vae_steps=1, vae_channels="8,16",
                 unet_channels="16,32", text_width=16, tokenizer="bytes", sample_steps=2, sample_every=2)
    assert (tmp_path / "vae_stage" / "model" / "config.json").is_file()
    names = (folder / "trained_captions.txt").read_text(encoding="utf-8").split("\n")
    assert "red circle" in names and "blue triangle" in names
    assert len(samples) == 2  # stage 1 (VAE reconstructions) and stage 2 (prompts)
    ident = identify(folder)
    assert ident.kind == "diffusers" and ident.family == "sd1"
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert unet["sample_size"] == 32 and unet["addition_embed_type"] == "text"
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction"

    job = DiffusionJob(model=ModelRef(str(folder)), params=GenerationParams(prompt="red circle", width=64, height=64,
                                                                           steps=2, seed=1))
    result = DiffusionEngine().run(job, lambda event: None, lambda: False)
    assert result.images[0].size == (64, 64)


def test_stylegan_trains_with_r1_and_exports_our_format(shapes_dir, tmp_path):
    from aigc_desktop.engines.stylegan.loaders import load_generator
    from aigc_desktop.training.evaluate import features, precision_recall
    from aigc_desktop.training.stylegan import generate_images

    options = dict(data=str(shapes_dir), resolution=16, batch=4, z_dim=16, w_dim=16, channel_base=128,
                   channel_max=32, r1_every=2, sample_every=0, checkpoint_every=2, log_every=1)
    folder = run("stylegan", out=str(tmp_path / "a"), steps=3, **options)
    assert identify(folder).kind == "stylegan"
    G = load_generator(folder).G
    assert G.img_resolution == 16 and "mapping.fc0.weight" in G.state_dict()
    losses = [json.loads(line) for line in (tmp_path / "a" / "losses.jsonl").read_text().splitlines()]
    assert "r1" in losses[0] and {"loss_g", "loss_d"} <= losses[1].keys()
    # Exact resume across a checkpoint, with two optimizers and noise drawn from the trainer's generator.
    run("stylegan", out=str(tmp_path / "b"), steps=2, **options)
    run("stylegan", out=str(tmp_path / "b"), steps=3, resume=True, **options)
    a = tensors(load_checkpoint(tmp_path / "a" / "checkpoint.pt")["models"])
    b = tensors(load_checkpoint(tmp_path / "b" / "checkpoint.pt")["models"])
    for key in a:
        assert torch.equal(a[key], b[key]), key

    images = generate_images(folder, 8)
    real = features([im.resize((16, 16)) for im in images[:4]])
    fake = features(images[4:])
    precision, recall = precision_recall(real, fake, k=1)
    assert 0 <= precision <= 1 and 0 <= recall <= 1
