"""Architecture (names, schedules, shapes) and sampling behaviour of our StyleGAN2/3 networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.engines.stylegan import sampling
from aigc_desktop.engines.stylegan.generator import Generator
from aigc_desktop.engines.stylegan.stylegan3 import layer_schedule
from aigc_desktop.testing.stylegan import TINY_CONFIGS

ALL = list(TINY_CONFIGS)

# The printed structure of NVIDIA's stylegan3-t 1024x1024 synthesis network (published model card data):
# name, in/out sampling rate, out cutoff, out half width, fp16.
T1024 = [
    ("L0_36_512", 16, 16, 2, 6, False), ("L1_36_512", 16, 16, 3.1748, 4.8252, False),
    ("L2_52_512", 16, 32, 5.03968, 10.9603, False), ("L3_52_512", 32, 32, 8, 8, False),
    ("L4_84_512", 32, 64, 12.6992, 19.3008, False), ("L5_148_512", 64, 128, 20.1587, 43.8413, True),
    ("L6_148_512", 128, 128, 32, 32, True), ("L7_276_323", 128, 256, 50.7968, 77.2032, True),
    ("L8_276_203", 256, 256, 80.6349, 47.3651, True), ("L9_532_128", 256, 512, 128, 128, True),
    ("L10_1044_81", 512, 1024, 203.187, 308.813, True), ("L11_1044_51", 1024, 1024, 322.54, 189.46, True),
    ("L12_1044_32", 1024, 1024, 512, 118.346, True), ("L13_1024_32", 1024, 1024, 512, 118.346, True),
    ("L14_1024_3", 1024, 1024, 512, 118.346, True),
]


def test_stylegan3_schedule_matches_the_published_1024_network():
    sch = layer_schedule(1024, 3)
    assert (sch.input_channels, sch.input_size, sch.input_sampling_rate, sch.input_bandwidth) == (512, 36, 16, 2)
    assert len(sch.layers) == len(T1024)
    for layer, (name, in_sr, out_sr, cutoff, half_width, fp16) in zip(sch.layers, T1024):
        assert layer.name == name
        assert (layer.in_sampling_rate, layer.out_sampling_rate, layer.use_fp16) == (in_sr, out_sr, fp16)
        assert layer.out_cutoff == pytest.approx(cutoff, rel=1e-5)
        assert layer.out_half_width == pytest.approx(half_width, rel=1e-5)
    assert [layer.is_critically_sampled for layer in sch.layers][-3:] == [True, True, True]
    # Config R doubles the channels: its first layer is L0_36_1024 in NVIDIA's stylegan3-r pickles.
    assert layer_schedule(1024, 3, channel_base=65536, channel_max=1024).layers[0].name == "L0_36_1024"
    assert layer_schedule(256, 3, channel_base=65536, channel_max=1024).layers[0].name == "L0_36_1024"


def test_stylegan2_names_and_layout_match_nvidia():
    G = Generator(512, 0, 512, 1024, 3, mapping_kwargs={"num_layers": 8},
                  synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256})
    assert G.num_ws == 18
    sd = G.state_dict()
    for name in ("mapping.fc7.weight", "mapping.w_avg", "synthesis.b4.const", "synthesis.b4.conv1.affine.weight",
                 "synthesis.b4.conv1.noise_const", "synthesis.b4.conv1.noise_strength", "synthesis.b4.torgb.weight",
                 "synthesis.b8.conv0.resample_filter", "synthesis.b1024.conv1.weight",
                 "synthesis.b1024.resample_filter"):
        assert name in sd, name
    assert tuple(sd["synthesis.b4.const"].shape) == (512, 4, 4)
    assert tuple(sd["synthesis.b1024.conv1.weight"].shape) == (32, 32, 3, 3)
    assert tuple(sd["synthesis.b64.conv0.weight"].shape) == (512, 512, 3, 3)
    assert tuple(sd["synthesis.b128.conv0.weight"].shape) == (256, 512, 3, 3)
    assert tuple(sd["synthesis.b8.conv0.resample_filter"].shape) == (4, 4)
    assert [b.use_fp16 for b in (G.synthesis.b64, G.synthesis.b128)] == [False, True]  # the top 4 resolutions
    resnet = Generator(512, 0, 512, 256, 3, synthesis_kwargs={"architecture": "resnet", "channel_base": 16384})
    keys = set(resnet.state_dict())
    assert "synthesis.b8.skip.weight" in keys and "synthesis.b8.torgb.weight" not in keys
    assert "synthesis.b256.torgb.weight" in keys
    assert resnet.synthesis.ws_per_block()[:3] == [(0, 1), (1, 2), (3, 2)]  # no to-RGB before the last block


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip_and_shapes(generators, name):
    G = generators[name]
    G2 = Generator.from_config(G.to_config())
    assert set(G2.state_dict()) == set(G.state_dict())
    G2.load_state_dict(G.state_dict())
    G2.eval()
    latent = sampling.Latent(seed=3, truncation_psi=0.7)
    a = sampling.synthesize(G, sampling.latent_ws(G, latent))
    b = sampling.synthesize(G2, sampling.latent_ws(G2, latent))
    assert a.shape == (1, 3, G.img_resolution, G.img_resolution)
    assert torch.equal(a, b)
    assert float(a.std()) > 1e-3  # not a blank image


def test_seed_to_z_is_nvidias_draw():
    z = sampling.z_from_seed(42, 512)
    assert z.shape == (1, 512)
    assert np.array_equal(z, np.random.RandomState(42).randn(1, 512))
    assert sampling.seed_class(5, 16, 10) == int((lambda r: (r.randn(16), r.randint(10))[1])(np.random.RandomState(5)))


def test_eight_bit_conversion_is_nvidias():
    img = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.2]).reshape(1, 1, 1, 6)
    out = sampling.to_uint8(img).reshape(-1).tolist()
    assert out == [0, 0, 128, 191, 255, 255]  # (x * 127.5 + 128).clamp(0, 255), then truncated


@pytest.mark.parametrize("name", ALL)
def test_psi_zero_gives_the_same_image_for_every_seed(generators, name):
    G = generators[name]
    images = [sampling.synthesize(G, sampling.latent_ws(G, sampling.Latent(seed=s, truncation_psi=0.0, class_idx=0)))
              for s in (0, 1, 12345)]
    assert torch.allclose(images[0], images[1], atol=1e-6) and torch.allclose(images[0], images[2], atol=1e-6)
    other = sampling.synthesize(G, sampling.latent_ws(G, sampling.Latent(seed=1, truncation_psi=1.0, class_idx=0)))
    assert not torch.allclose(images[0], other, atol=1e-3)


@pytest.mark.parametrize("name", ALL)
def test_mixing_a_seed_with_itself_changes_nothing(generators, name):
    G = generators[name]
    plain = sampling.latent_ws(G, sampling.Latent(seed=7, truncation_psi=0.8))
    for layers in ("coarse", "middle", "fine", "all", "1-2"):
        mixed = sampling.latent_ws(G, sampling.Latent(seed=7, truncation_psi=0.8, mix_seed=7, mix_layers=layers))
        assert torch.equal(plain, mixed)
    other = sampling.latent_ws(G, sampling.Latent(seed=7, truncation_psi=0.8, mix_seed=8, mix_layers="fine"))
    fine = sampling.mix_layer_indices("fine", G)
    keep = [i for i in range(G.num_ws) if i not in fine]
    assert torch.equal(other[:, keep], plain[:, keep]) and not torch.equal(other[:, fine], plain[:, fine])


def test_mixing_presets():
    big = Generator(32, 0, 32, 1024, 3, synthesis_kwargs={"channel_base": 2048, "channel_max": 8})
    assert [sampling.preset_range(p, big) for p in ("coarse", "middle", "fine")] == [(0, 4), (4, 8), (8, 18)]
    small = Generator(32, 0, 32, 32, 3, synthesis_kwargs={"channel_base": 2048, "channel_max": 8})
    ranges = [sampling.preset_range(p, small) for p in ("coarse", "middle", "fine")]
    assert ranges[0][0] == 0 and ranges[-1][1] == small.num_ws and all(a < b for a, b in ranges)
    assert sampling.mix_layer_indices("2-4", big) == [2, 3, 4]
    with pytest.raises(InvalidParameter, match="out of range"):
        sampling.mix_layer_indices("0-40", big)
    with pytest.raises(InvalidParameter):
        sampling.mix_layer_indices("coarse-ish", big)


def test_truncation_cutoff_leaves_later_layers_alone(generators):
    G = generators["sg2-skip"]
    full = sampling.latent_ws(G, sampling.Latent(seed=4, truncation_psi=1.0))
    cut = sampling.latent_ws(G, sampling.Latent(seed=4, truncation_psi=0.0, truncation_cutoff=3))
    assert torch.allclose(cut[:, :3], G.mapping.w_avg.expand(1, 3, -1))
    assert torch.equal(cut[:, 3:], full[:, 3:])
    with pytest.raises(InvalidParameter):
        sampling.latent_ws(G, sampling.Latent(seed=4, truncation_cutoff=99))


def test_class_labels(generators):
    G = generators["sg2-resnet"]  # 4 classes
    a = sampling.latent_ws(G, sampling.Latent(seed=1, class_idx=0))
    b = sampling.latent_ws(G, sampling.Latent(seed=1, class_idx=3))
    assert not torch.equal(a, b)
    auto = sampling.latent_ws(G, sampling.Latent(seed=1))
    drawn = sampling.seed_class(1, G.z_dim, G.c_dim)
    assert torch.equal(auto, sampling.latent_ws(G, sampling.Latent(seed=1, class_idx=drawn)))
    with pytest.raises(InvalidParameter, match="classes 0-3"):
        sampling.latent_ws(G, sampling.Latent(seed=1, class_idx=4))


def test_noise_modes(generators):
    G = generators["sg2-skip"]
    ws = sampling.latent_ws(G, sampling.Latent(seed=2))
    const = sampling.synthesize(G, ws, "const")
    none = sampling.synthesize(G, ws, "none")
    r1 = sampling.synthesize(G, ws, "random", noise_seed=5)
    r2 = sampling.synthesize(G, ws, "random", noise_seed=5)
    r3 = sampling.synthesize(G, ws, "random", noise_seed=6)
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert not torch.equal(const, none) and not torch.equal(const, r1)


def test_conv_clamp_is_honoured(generators):
    G = Generator.from_config(generators["sg2-skip"].to_config()).eval()
    G.load_state_dict(generators["sg2-skip"].state_dict())
    seen = []
    G.synthesis.b32.conv1.register_forward_hook(lambda _m, _i, out: seen.append(out.abs().max().item()))
    with torch.no_grad():
        G.synthesis.b32.conv1.bias.fill_(1000.0)  # pushes the activations far beyond the clamp
    sampling.synthesize(G, sampling.latent_ws(G, sampling.Latent(seed=0)))
    assert seen and 255 < seen[0] <= 256  # lrelu(1000 + x) * sqrt(2) clamped to conv_clamp = 256


def test_stylegan3_transform_moves_the_image(generators):
    from aigc_desktop.engines.stylegan.stylegan3 import input_transform

    G = generators["sg3-t"]
    ws = sampling.latent_ws(G, sampling.Latent(seed=1))
    base = sampling.synthesize(G, ws)
    same = sampling.synthesize(G, ws, transform=input_transform((0.0, 0.0), 0.0))
    moved = sampling.synthesize(G, ws, transform=input_transform((0.25, 0.0), 10.0))
    assert torch.allclose(base, same, atol=1e-5)
    assert not torch.allclose(base, moved, atol=1e-2)


def test_walks(generators):
    G = generators["sg2-skip"]
    keys = [sampling.Latent(seed=s, truncation_psi=0.7) for s in (1, 2, 3)]
    frames = list(sampling.walk_ws(G, keys, 4, space="w"))
    assert len(frames) == 9
    assert torch.allclose(frames[0], sampling.latent_ws(G, keys[0]))
    assert torch.allclose(frames[4], sampling.latent_ws(G, keys[1]))
    assert torch.allclose(frames[-1], sampling.latent_ws(G, keys[2]))
    assert torch.allclose(frames[2], (frames[0] + frames[4]) / 2, atol=1e-5)  # lerp midpoint
    zframes = list(sampling.walk_ws(G, keys, 4, space="z", loop=True))
    assert len(zframes) == 12 and torch.allclose(zframes[0], frames[0], atol=1e-5)
    a, b = torch.randn(1, 64), torch.randn(1, 64)
    mid = sampling.slerp(a, b, 0.5)
    assert abs(float(mid.norm()) - float((a.norm() + b.norm()) / 2)) < 0.3 * float(a.norm())
    assert torch.allclose(sampling.slerp(a, b, 0.0), a, atol=1e-5)
    with pytest.raises(InvalidParameter):
        list(sampling.walk_ws(G, keys[:1], 4))


def test_training_api_backpropagates_and_tracks_averages():
    G = Generator.from_config(TINY_CONFIGS["sg2-skip"]).train()
    z = torch.randn(2, G.z_dim)
    before = G.mapping.w_avg.clone()
    img = G(z, None, update_emas=True)
    img.square().mean().backward()
    assert G.synthesis.b8.conv0.weight.grad is not None and G.mapping.fc0.weight.grad is not None
    assert not torch.equal(before, G.mapping.w_avg)
    G3 = Generator.from_config(TINY_CONFIGS["sg3-t"]).train()
    G3(torch.randn(2, G3.z_dim), None, update_emas=True).mean().backward()
    assert float(G3.synthesis.L0_24_32.magnitude_ema) != 1.0


@pytest.mark.parametrize("name", ["sg2-skip", "sg3-t"])
def test_float16_layers_as_on_cuda(monkeypatch, generators, name):
    """The layers a checkpoint marks float16 (num_fp16_res) run in float16 where that is allowed (CUDA);
    the image stays float32 and close to the float32 one; force_fp32 restores it exactly."""
    from aigc_desktop.engines.stylegan import ops

    G = generators[name]
    ws = sampling.latent_ws(G, sampling.Latent(seed=3, truncation_psi=0.7))
    ref = sampling.synthesize(G, ws)
    monkeypatch.setattr(ops, "fp16_supported", lambda device: True)
    half = sampling.synthesize(G, ws)
    assert half.dtype == torch.float32
    assert 0 < float((half - ref).abs().max()) < 0.02 * float(ref.abs().max())
    assert torch.equal(sampling.synthesize(G, ws, force_fp32=True), ref)
