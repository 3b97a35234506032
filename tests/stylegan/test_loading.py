"""Safe loading of NVIDIA pickles, rosinality .pt files and our safetensors + JSON format."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

from aigc_desktop.core.detect import identify
from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.engines.stylegan import loaders, safe_pickle, sampling
from aigc_desktop.engines.stylegan.generator import Generator
from aigc_desktop.testing.stylegan import (TINY_CONFIGS, fake_nvidia_modules, make_generator, to_rosinality,
                                           write_malicious_pickle, write_nvidia_pickle, write_rosinality)


def images(G, seeds=(0, 1, 2), psi=0.7, **latent):
    return torch.cat([sampling.synthesize(G, sampling.latent_ws(G, sampling.Latent(seed=s, truncation_psi=psi,
                                                                                    **latent)))
                      for s in seeds])


@pytest.mark.parametrize("name", list(TINY_CONFIGS))
def test_nvidia_pickle_loads_by_name_without_running_its_source(generators, sg_files, name):
    loaded = loaders.load_generator(sg_files[name])
    assert loaded.format == "nvidia-pickle"
    assert loaded.info["class_name"].endswith(".Generator")
    assert loaded.G.to_config() == generators[name].to_config()
    assert torch.equal(images(loaded.G), images(generators[name]))
    assert not sg_files["marker"].exists(), "the embedded module source was executed"


def test_the_embedded_source_would_run_under_a_normal_unpickle(tmp_path, generators):
    """Proves the test payload is live: plain pickle.load (with NVIDIA's module importable) runs it."""
    marker = tmp_path / "ran.txt"
    path = write_nvidia_pickle(generators["sg2-skip"], tmp_path / "g.pkl", marker)
    loaders.load_generator(path)
    assert not marker.exists()
    with fake_nvidia_modules(marker):
        with open(path, "rb") as fh:
            pickle.load(fh)  # noqa: S301 - this is the unsafe behaviour under test
    assert marker.exists()


def test_stub_keeps_class_name_and_state(sg_files):
    data = safe_pickle.load(sg_files["sg3-t"])
    assert set(data) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    g = data["G_ema"]
    assert isinstance(g, safe_pickle.PersistentStub) and g.class_name == "training.networks_stylegan3.Generator"
    assert g.init_kwargs["img_resolution"] == 32 and "channel_base" in g.init_kwargs  # flat, as StyleGAN3 writes
    assert isinstance(data["training_set_kwargs"], safe_pickle.EasyDict)
    assert data["training_set_kwargs"].resolution == 32
    layer = g.child("synthesis").child("L0_24_32")
    assert list(layer.state["in_size"]) == [24, 24]  # numpy arrays come back as arrays
    assert "module_src" not in g.state
    tensors = safe_pickle.state_dict(g)
    assert "synthesis.L2_40_32.up_filter" in tensors and "synthesis.L6_32_3.up_filter" not in tensors  # None


def test_stylegan2_ada_nested_kwargs_and_stylegan3_repo_flat_kwargs(tmp_path, generators):
    G = generators["sg2-resnet"]
    for flat in (False, True):
        path = write_nvidia_pickle(G, tmp_path / f"flat-{flat}.pkl", tmp_path / "m", flat_kwargs=flat)
        loaded = loaders.load_generator(path)
        assert loaded.G.to_config() == G.to_config()
        assert torch.equal(images(loaded.G, class_idx=2), images(G, class_idx=2))


def _write_with_defaults_left_out(monkeypatch, G, path, keys=("conv_clamp", "num_fp16_res")):
    """A pickle as the stylegan3 repository's train.py writes it: options left at the network code's defaults
    are absent from the init kwargs and recorded only on the pickled layers."""
    from aigc_desktop.testing import stylegan as helper

    real = helper.nvidia_init_kwargs

    def without_defaults(G, easy, flat):
        kwargs = real(G, easy, flat)
        for key in keys:
            kwargs.pop(key, None)
        return kwargs

    with monkeypatch.context() as m:
        m.setattr(helper, "nvidia_init_kwargs", without_defaults)
        return helper.write_nvidia_pickle(G, path, path.with_suffix(".ran"), flat_kwargs=True)


@pytest.mark.parametrize("clamp", [256, None])
def test_clamp_and_float16_layers_left_at_defaults_are_read_from_the_layers(tmp_path, monkeypatch, clamp):
    """stylegan3-repo StyleGAN2 pickles keep conv_clamp=256 / num_fp16_res=4 only as their code's defaults;
    stylegan2-ada-pytorch's defaults are the opposite (no clamp, no float16). Neither may be assumed."""
    config = {**TINY_CONFIGS["sg2-skip"], "synthesis_kwargs": {**TINY_CONFIGS["sg2-skip"]["synthesis_kwargs"],
                                                              "conv_clamp": clamp, "num_fp16_res": 3}}
    G = make_generator(config, seed=5)
    G.synthesis.b8.conv1.bias[:2] = torch.tensor([900.0, -900.0])  # far beyond the clamp: it decides the image
    loaded = loaders.load_generator(_write_with_defaults_left_out(monkeypatch, G, tmp_path / "defaults.pkl"))
    assert loaded.G.synthesis_kwargs["conv_clamp"] == clamp
    assert loaded.G.synthesis_kwargs["num_fp16_res"] == 3
    assert [b.use_fp16 for b in loaded.G.synthesis.children()] == [b.use_fp16 for b in G.synthesis.children()]
    assert {m.conv_clamp for m in loaded.G.synthesis.modules() if hasattr(m, "conv_clamp")} == {clamp}
    assert torch.equal(images(loaded.G), images(G))
    if clamp is not None:  # the clamp changes this image, so losing it could not go unnoticed
        other = {**config, "synthesis_kwargs": {**config["synthesis_kwargs"], "conv_clamp": None}}
        unclamped = Generator.from_config(other).eval()
        unclamped.load_state_dict(G.state_dict())
        assert not torch.allclose(images(unclamped), images(G), atol=1e-3)


class _PickleAtProtocol:
    """Stands in for the pickle module of the test helper so that it writes another protocol."""

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol

    def dump(self, obj, fh, protocol=None) -> None:
        pickle.dump(obj, fh, protocol=self.protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_pickle_protocol_loads(tmp_path, monkeypatch, generators, protocol):
    """NVIDIA's scripts pickle with the running Python's default protocol (3 under 3.7, 4 under 3.8-3.13, 5 from
    3.14). Protocol 2 names builtins by their Python 2 names (__builtin__) and spells bytes as _codecs.encode;
    protocol 5 rebuilds numpy arrays (StyleGAN3's layer sizes) with numpy's _frombuffer."""
    from aigc_desktop.testing import stylegan as helper

    monkeypatch.setattr(helper, "pickle", _PickleAtProtocol(protocol))
    for name in ("sg2-skip", "sg3-r"):
        path = helper.write_nvidia_pickle(generators[name], tmp_path / f"{name}-{protocol}.pkl", tmp_path / "ran")
        assert path.read_bytes()[:2] == bytes([0x80, protocol])
        loaded = loaders.load_generator(path)
        assert torch.equal(images(loaded.G), images(generators[name]))
    assert not (tmp_path / "ran").exists()


def test_protocol_specific_spellings_meet_the_allow_list():
    import numpy as np

    assert safe_pickle.loads(pickle.dumps({1, 2}, protocol=2)) == {1, 2}
    with pytest.raises(safe_pickle.UnsafePickleError, match="builtins.eval"):
        safe_pickle.loads(b"c__builtin__\neval\n(S'1'\ntR.")
    # A contiguous array at protocol 5 (e.g. a StyleGAN3 layer size after the pickle was loaded and saved again).
    sizes = np.asarray([[36, 36], [52, 52]], dtype=np.int64)
    data = pickle.dumps(sizes, protocol=5)
    assert b"_frombuffer" in data
    assert np.array_equal(safe_pickle.loads(data), sizes)
    with pytest.raises(safe_pickle.UnsafePickleError, match="unexpected type"):  # object arrays never load
        safe_pickle._numpy_frombuffer(bytes(8), np.dtype(object), (1,))


def test_malicious_reduce_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = write_malicious_pickle(tmp_path / "evil.pkl", marker)
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"evil.pkl: refused: .*(os|posix|nt)\.system"):
        loaders.load_generator(path)
    assert not marker.exists()
    assert identify(path).kind != "stylegan"


@pytest.mark.parametrize("payload", [("builtins", "eval"), ("subprocess", "Popen"), ("torch", "load"),
                                     ("torch_utils.persistence", "persistent_class")])
def test_unknown_globals_are_refused(payload):
    module, name = payload
    data = b"\x80\x03c" + module.encode() + b"\n" + name.encode() + b"\nq\x00."
    with pytest.raises(safe_pickle.UnsafePickleError, match=f"{module}.{name}"):
        safe_pickle.loads(data)


def test_tensorflow_pickles_are_named(tmp_path):
    path = tmp_path / "karras2019.pkl"
    path.write_bytes(b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(ModelLoadError, match="karras2019.pkl: this is a TensorFlow StyleGAN pickle"):
        loaders.load_generator(path)


def test_truncated_pickle_gives_a_clear_error(tmp_path, sg_files):
    data = sg_files["sg2-skip"].read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="cut.pkl is truncated") as info:
        loaders.load_generator(path)
    assert "\n" not in str(info.value)
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        loaders.load_generator(tmp_path / "empty.pkl")


def test_pickle_without_a_generator(tmp_path):
    path = tmp_path / "dict.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"something": 1}, fh, protocol=3)
    with pytest.raises(ModelLoadError, match="no generator"):
        loaders.load_generator(path)


def test_round_trip_to_our_format_gives_the_same_images(tmp_path, generators, sg_files):
    for name in ("sg2-skip", "sg3-r"):
        out = loaders.convert(sg_files[name], tmp_path / name)
        assert (out / "stylegan.json").is_file() and (out / "generator.safetensors").is_file()
        assert identify(out).kind == "stylegan"
        assert identify(out / "generator.safetensors").kind == "stylegan"
        for source in (out, out / "generator.safetensors", out / "stylegan.json"):
            loaded = loaders.load_generator(source)
            assert loaded.format == "aigc"
            assert torch.equal(images(loaded.G), images(generators[name]))
        doc = loaders.load_generator(out).info["source"]
        assert doc["format"] == "nvidia-pickle" and len(doc["sha256"]) == 64


def test_our_format_errors(tmp_path, sg_files):
    out = shutil.copytree(sg_files["ours"], tmp_path / "copy")
    weights = out / "generator.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelLoadError, match="truncated"):
        loaders.load_generator(out)
    (out / "stylegan.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable"):
        loaders.load_generator(out)
    from safetensors.torch import save_file

    save_file({"mapping.fc0.weight": torch.zeros(2, 2), "synthesis.b4.const": torch.zeros(1)},
              str(tmp_path / "x.safetensors"))
    with pytest.raises(ModelLoadError, match="no config"):
        loaders.load_generator(tmp_path / "x.safetensors")


def test_architecture_mismatch_is_named(tmp_path, generators):
    G = generators["sg2-skip"]
    loaders.save_ours(G, tmp_path / "m")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "m" / "generator.safetensors"))
    del tensors["synthesis.b8.conv0.weight"]
    save_file(tensors, str(tmp_path / "m" / "generator.safetensors"))
    with pytest.raises(ModelLoadError, match="missing synthesis.b8.conv0.weight"):
        loaders.load_generator(tmp_path / "m")


def test_rosinality_checkpoint_gives_the_same_images(tmp_path, generators, sg_files):
    G = generators["sg2-skip"]
    loaded = loaders.load_generator(sg_files["rosinality"])
    assert loaded.format == "rosinality" and loaded.info["w_avg"] == "latent_avg"
    assert loaded.info["args"]["size"] == 32
    assert torch.allclose(images(loaded.G), images(G), atol=1e-5)
    assert torch.allclose(images(loaded.G, psi=1.0), images(G, psi=1.0), atol=1e-5)
    assert identify(sg_files["rosinality"]).kind == "stylegan"
    # Without latent_avg the mean w is estimated; a bare state dict loads too.
    bare = tmp_path / "bare.pt"
    torch.save(to_rosinality(G), bare)
    est = loaders.load_generator(bare)
    assert est.info["w_avg"].startswith("estimated")
    assert torch.allclose(images(est.G, psi=1.0), images(G, psi=1.0), atol=1e-5)
    assert identify(bare).kind == "stylegan"


class Unexpected:
    """Any class outside the allowed globals."""


def test_rosinality_refuses_other_globals(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": {}, "args": Unexpected()}, path)
    with pytest.raises(ModelLoadError, match="refused"):
        loaders.load_generator(path)
    cut = tmp_path / "cut.pt"
    good = write_rosinality(make_generator("sg2-skip"), tmp_path / "good.pt").read_bytes()
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelLoadError, match="cut.pt"):
        loaders.load_generator(cut)


def test_not_a_model(tmp_path):
    path = tmp_path / "notes.pkl"
    path.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a StyleGAN"):
        loaders.load_generator(path)
    with pytest.raises(ModelLoadError, match="File not found"):
        loaders.load_generator(tmp_path / "missing.pkl")
