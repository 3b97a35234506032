"""LoRA: kohya and diffusers layouts, weights, applied per job and removed, bad files, CLI --lora."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from aigc_desktop.core import paths
from aigc_desktop.core.errors import ModelLoadError, UserError
from aigc_desktop.core.jobs import DiffusionJob, ModelRef
from aigc_desktop.core.params import GenerationParams, LoraRef
from aigc_desktop.engines.diffusion import lora
from aigc_desktop.testing.tiny import tiny_family_pipeline, tiny_sd_components, tiny_sd_pipeline
from aigc_desktop.testing.tiny_lora import lora_deltas, save_diffusers_lora, save_kohya_lora
from tests.image_compare import assert_images_close

# The app filters PEFT's note about a second adapter at import; pytest resets filters for each test.
pytestmark = pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """LoRA files for the tiny SD model (the same deltas in three layouts, and a second, U-Net-only one)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("loras")
    comps = tiny_sd_components()  # the architecture and names of the tiny_sd_path model
    deltas = lora_deltas(comps["unet"], comps["text_encoder"], rank=4, seed=1)
    other = lora_deltas(comps["unet"], None, rank=2, seed=2)
    return SimpleNamespace(
        deltas=deltas, other=other,
        kohya=save_kohya_lora(folder / "tinystyle.safetensors", deltas, alpha=2.0),
        kohya_sgm=save_kohya_lora(folder / "tinystyle_sgm.safetensors", deltas, alpha=2.0, sgm=True),
        diffusers=save_diffusers_lora(folder / "tinystyle_diffusers.safetensors", deltas, alpha=2.0),
        unet_only=save_kohya_lora(folder / "unet_only.safetensors", other, alpha=1.0))


def generate(engine, model_path, **params):
    p = GenerationParams(**{"prompt": "a cat", "seed": 7, "steps": 2, "width": 64, "height": 64, **params})
    result = engine.run(DiffusionJob(model=ModelRef(str(model_path)), params=p), lambda e: None, lambda: False)
    return np.asarray(result.images[0]).astype(int), result.records[0]


def test_layouts_change_the_image_alike_and_are_removed_after_the_job(engine, tiny_sd_path, files):
    before, record = generate(engine, tiny_sd_path)
    assert record["loras"] == []
    images = {}
    for layout in ("kohya", "kohya_sgm", "diffusers"):
        images[layout], record = generate(engine, tiny_sd_path, loras=(LoraRef(str(getattr(files, layout)), 1.0),))
        (entry,) = record["loras"]
        assert entry["file"] == getattr(files, layout).name and entry["weight"] == 1.0
    assert np.abs(images["kohya"] - before).max() > 20
    # Three layouts of the same deltas, converted by other code paths (other float order): within rounding.
    assert_images_close(images["kohya_sgm"], images["kohya"], what="kohya SGM layout against kohya")
    assert_images_close(images["diffusers"], images["kohya"], what="diffusers layout against kohya")
    after, _ = generate(engine, tiny_sd_path)
    assert np.array_equal(after, before)  # the cached model is unchanged


def test_record_names_file_hash_and_weights(engine, tiny_sd_path, files):
    _install(files.unet_only)
    _, record = generate(engine, tiny_sd_path, prompt="a cat <lora:unet_only:0.3:0.6>",
                         loras=(LoraRef(str(files.kohya), 0.8),))
    by_name = {e["name"]: e for e in record["loras"]}
    assert by_name["tinystyle"]["sha256"] == hashlib.sha256(files.kohya.read_bytes()).hexdigest()
    assert by_name["tinystyle"]["weight"] == 0.8 and by_name["tinystyle"]["source"] == "params"
    assert by_name["unet_only"]["weight"] == 0.6 and by_name["unet_only"]["te_weight"] == 0.3
    assert by_name["unet_only"]["source"] == "prompt" and json.dumps(record["loras"])


def _install(path: Path) -> Path:
    folder = paths.default_models_dir() / "Lora" / "styles"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    target.write_bytes(path.read_bytes())
    return target


def test_prompt_tag_by_name_equals_the_job_list_and_weight_zero_is_no_lora(engine, tiny_sd_path, files):
    _install(files.kohya)
    by_tag, record = generate(engine, tiny_sd_path, prompt="a cat<lora:tinystyle:0.7>")
    by_list, _ = generate(engine, tiny_sd_path, loras=(LoraRef(str(files.kohya), 0.7),))
    assert np.array_equal(by_tag, by_list)
    assert record["loras"][0]["name"] == "tinystyle"
    plain, _ = generate(engine, tiny_sd_path)
    zero, _ = generate(engine, tiny_sd_path, prompt="a cat<lora:styles/tinystyle:0>")
    assert np.array_equal(zero, plain)


def _merged_pipeline(deltas_weights):
    """Reference: the LoRA deltas added into the weights by hand (W += up @ down * alpha / rank * weight)."""
    pipe = tiny_sd_pipeline()
    with torch.no_grad():
        for deltas, alpha, te_w, unet_w in deltas_weights:
            for part, modules in deltas.modules.items():
                model = getattr(pipe, part)
                for name, m in modules.items():
                    module = model.get_submodule(name)
                    w = unet_w if part == "unet" else te_w
                    delta = m.up.flatten(1) @ m.down.flatten(1) * (alpha / deltas.rank) * w
                    module.weight += delta.view(module.weight.shape)
    return pipe


def _image(pipe):
    return pipe("a cat", num_inference_steps=2, height=64, width=64, output_type="np",
                generator=torch.Generator().manual_seed(0)).images[0]


def test_two_loras_with_separate_weights_match_merged_weights(files):
    pipe = tiny_sd_pipeline()
    uses = [lora.LoraUse(files.kohya, te_weight=0.5, unet_weight=1.2),
            lora.LoraUse(files.unet_only, te_weight=1.0, unet_weight=-0.7)]
    with lora.applied(pipe, "sd1", uses):
        got = _image(pipe)
    expected = _image(_merged_pipeline([(files.deltas, 2.0, 0.5, 1.2), (files.other, 1.0, 1.0, -0.7)]))
    # LoRA layers (x W + x down up) against merged weights (x (W + up down)): another computation. Measured
    # at most 0.003 level on these float images; 0.05 level (2e-4) on every value is the bound.
    assert_images_close(got, expected, what="LoRA layers against merged weights", level=0.05, share=1.0,
                        mean=0.01, worst=None)
    assert np.abs(got - _image(tiny_sd_pipeline())).max() > 0.05
    assert pipe.get_list_adapters() == {} and np.array_equal(_image(pipe), _image(tiny_sd_pipeline()))


def test_sdxl_kohya_lora_with_both_text_encoders(tmp_path):
    pipe = tiny_family_pipeline("sdxl")
    deltas = lora_deltas(pipe.unet, pipe.text_encoder, pipe.text_encoder_2, rank=2, seed=3)
    path = save_kohya_lora(tmp_path / "xl.safetensors", deltas, alpha=1.0, sgm=True, layers_per_block=2)
    keys = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")])
    assert any(k.startswith("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.") for k in keys)
    assert any(k.startswith("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.") for k in keys)
    assert any(k.startswith("lora_te2_text_model_encoder_layers_9_mlp_fc2.") for k in keys)

    def image():
        return pipe("a cat", num_inference_steps=2, height=64, width=64, output_type="np",
                    generator=torch.Generator().manual_seed(0)).images[0]

    before = image()
    state = {name: _state(getattr(pipe, name)) for name in ("unet", "text_encoder", "text_encoder_2")}
    with lora.applied(pipe, "sdxl", [lora.LoraUse(path, 1.0, 1.0)]):
        assert set(pipe.get_list_adapters()) == {"unet", "text_encoder", "text_encoder_2"}
        changed = image()
    assert np.abs(changed - before).max() > 0.05
    for name, (modules, params) in state.items():  # exactly the same modules and weights as before
        now_modules, now_params = _state(getattr(pipe, name))
        assert now_modules == modules and all(torch.equal(now_params[k], v) for k, v in params.items())
    # Not bitwise: on CPU a Linear on a strided (permuted) input rounds differently with the buffer's
    # address, and loading moved the allocator on; the SD 1.x engine test above compares images exactly.
    assert_images_close(image(), before, what="SDXL after the LoRA is removed", level=0.05, share=1.0, mean=0.01,
                        worst=None)


def _state(module):
    return ([(n, type(m).__name__) for n, m in module.named_modules()],
            {k: v.clone() for k, v in module.state_dict().items()})


# ------------------------------------------------------------------------------------------ bad input


def _fake_lora(path: Path, unet_context: int | None = None, te: int | None = None, te2: int | None = None,
               extra: dict | None = None) -> Path:
    tensors = dict(extra or {})
    if unet_context:
        key = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
        tensors[f"{key}.lora_down.weight"] = torch.zeros(4, unet_context)
        tensors[f"{key}.lora_up.weight"] = torch.zeros(640, 4)
        tensors[f"{key}.alpha"] = torch.tensor(4.0)
    for prefix, width in (("lora_te1" if te2 else "lora_te", te), ("lora_te2", te2)):
        if width:
            key = f"{prefix}_text_model_encoder_layers_0_self_attn_q_proj"
            tensors[f"{key}.lora_down.weight"] = torch.zeros(4, width)
            tensors[f"{key}.lora_up.weight"] = torch.zeros(width, 4)
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("kind, message", [
    ("sdxl", r"LoRA 'bad' is for SDXL \(cross-attention width 2048\) and does not fit this SD 1.x model \(width 32\)"),
    ("sd2", r"LoRA 'bad' is for SD 2.x \(cross-attention width 1024\)"),
    ("sd1_te_only", r"LoRA 'bad' is for SD 1.x \(text-encoder width 768\) and does not fit this SD 1.x model "
                    r"\(text-encoder width 32\)"),
    ("te2_only", r"LoRA 'bad' is for SDXL \(it has second-text-encoder layers\)"),
    ("loha", r"LoRA 'bad' is a LoHa network"),
    ("not_lora", r"'bad' is not a LoRA file"),
])
def test_lora_for_another_family_is_one_clear_line(engine, tiny_sd_path, tmp_path, kind, message):
    path = tmp_path / "bad.safetensors"
    if kind == "sdxl":
        _fake_lora(path, unet_context=2048, te=768, te2=1280)
    elif kind == "sd2":
        _fake_lora(path, unet_context=1024, te=1024)
    elif kind == "sd1_te_only":
        _fake_lora(path, te=768)
    elif kind == "te2_only":
        _fake_lora(path, te2=32, extra={"lora_te1_x.lora_down.weight": torch.zeros(1, 32)})
    elif kind == "loha":
        _fake_lora(path, extra={"lora_unet_a.hada_w1_a": torch.zeros(2, 2)})
    else:
        save_file({"model.weight": torch.zeros(2, 2)}, str(path))
    before, _ = generate(engine, tiny_sd_path)
    with pytest.raises(UserError, match=message) as info:
        generate(engine, tiny_sd_path, loras=(LoraRef(str(path), 1.0),))
    assert "\n" not in str(info.value)
    after, _ = generate(engine, tiny_sd_path)
    assert np.array_equal(before, after)


def test_unreadable_and_missing_loras(engine, tiny_sd_path, tmp_path, files):
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(files.kohya.read_bytes()[:300])
    with pytest.raises(ModelLoadError, match="Could not read LoRA cut.safetensors"):
        generate(engine, tiny_sd_path, loras=(LoraRef(str(truncated), 1.0),))
    with pytest.raises(UserError, match="LoRA not found: 'nope'"):
        generate(engine, tiny_sd_path, prompt="a cat <lora:nope:1>")
    with pytest.raises(UserError, match=r"LoRA weight in <lora:tinystyle:lots> is not a number: 'lots'"):
        generate(engine, tiny_sd_path, prompt="a cat <lora:tinystyle:lots>", loras=())
    ckpt = tmp_path / "old.pt"
    ckpt.write_bytes(b"not used")
    with pytest.raises(UserError, match="only .safetensors LoRA files"):
        generate(engine, tiny_sd_path, loras=(LoraRef(str(ckpt), 1.0),))


# ------------------------------------------------------------------------------------------ CLI


def test_cli_lora_flag(capsys, tmp_path, tiny_sd_path, files):
    from aigc_desktop.cli import build_parser, main

    args = build_parser().parse_args(["generate", "--model", "m", "--out", "o", "--lora", f"{files.kohya}:0.5",
                                      "--lora", str(files.unet_only)])
    assert args.lora == [LoraRef(str(files.kohya), 0.5), LoraRef(str(files.unet_only), 1.0)]
    out = tmp_path / "img.png"
    code = main(["generate", "--model", str(tiny_sd_path), "--prompt", "a cat", "--seed", "1", "--steps", "2",
                 "--width", "64", "--height", "64", "--lora", f"{files.kohya}:0.5", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as im:
        record = json.loads(im.info["aigc_desktop"])
        parameters = im.info["parameters"]
    assert record["loras"][0]["name"] == "tinystyle" and record["loras"][0]["weight"] == 0.5
    assert "Lora hashes" in parameters and "<lora:tinystyle:0.5>" in parameters
    capsys.readouterr()
    for bad, fragment in ((f"{files.kohya}:strong", "number as weight"), ("missing.safetensors:1", "LoRA not found"),
                          (f"{files.kohya}:99", "LoRA weight must be between -10 and 10")):
        code = main(["generate", "--model", str(tiny_sd_path), "--out", str(tmp_path / "x.png"), "--lora", bad])
        err = capsys.readouterr().err
        assert code == 2 and fragment in err and err.count("\n") == 1, err
