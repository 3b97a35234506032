"""Writing metadata: A1111 `parameters` text that sd-parsers reads, our JSON record, unicode, other engines,
and exact regeneration of an image from its own PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sd_parsers import ParserManager

from aigc_desktop.core import metadata
from aigc_desktop.core.metadata import (a1111_parameters, read_image_metadata, read_record, record_to_params,
                                        save_png)
from aigc_desktop.core.metadata.a1111 import split_a1111
from aigc_desktop.core.metadata.samplers import a1111_scheduler
from aigc_desktop.core.params import SCHEDULERS
from tests.image_compare import assert_images_close, assert_images_differ

SHA = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"


def _record(**over):
    rec = {
        "app": "aigc-desktop", "app_version": "0.1.0", "engine": "diffusion", "mode": "txt2img",
        "model": {"name": "v1-5-pruned-emaonly", "file": "v1-5-pruned-emaonly.safetensors",
                  "path": "/models/v1-5-pruned-emaonly.safetensors", "sha256": SHA, "family": "sd1",
                  "kind": "checkpoint", "vae": None, "prediction_type": "epsilon"},
        "prompt": "a red fox in the snow, (detailed fur:1.2)", "negative_prompt": "blurry, lowres",
        "seed": 3141592653, "base_seed": 3141592653, "batch_index": 0, "steps": 28, "cfg_scale": 6.5,
        "width": 512, "height": 768, "scheduler": "dpmpp_2m_karras", "clip_skip": 1,
        "device": "cpu", "dtype": "fp32",
    }
    rec.update(over)
    return rec


def _png(tmp_path, record, name="img.png"):
    return save_png(Image.new("RGB", (64, 64), (10, 20, 30)), tmp_path / name, record)


def test_a1111_text_layout():
    text = a1111_parameters(_record())
    prompt, negative, settings = text.split("\n")
    assert prompt == "a red fox in the snow, (detailed fur:1.2)"
    assert negative == "Negative prompt: blurry, lowres"
    assert settings == ("Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
                        "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: aigc-desktop 0.1.0")


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_sd_parsers_reads_it_back(tmp_path, scheduler):
    path = _png(tmp_path, _record(scheduler=scheduler))
    info = ParserManager().parse(path)
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    assert info.full_prompt == "a red fox in the snow, (detailed fur:1.2)"
    assert info.full_negative_prompt == "blurry, lowres"
    sampler = info.samplers[0]
    shown, schedule = metadata.a1111_sampler(scheduler)
    assert sampler.name == shown
    assert sampler.parameters["scheduler"] == schedule
    assert sampler.parameters["seed"] == "3141592653"
    assert sampler.parameters["steps"] == "28"
    assert float(sampler.parameters["cfg_scale"]) == 6.5
    assert sampler.model.name == "v1-5-pruned-emaonly" and sampler.model.hash == SHA[:10]
    assert info.metadata["Size"] == "512x768"
    # And our own A1111 reader maps the written sampler back to the same scheduler, exactly.
    assert a1111_scheduler(shown, schedule) == (scheduler, None)


def test_a1111_sampler_conventions():
    # A1111 1.9+ splits the schedule off; "Automatic" then means the sampler's default (Karras for DPM++ 2M).
    assert a1111_scheduler("DPM++ 2M", "Karras") == ("dpmpp_2m_karras", None)
    assert a1111_scheduler("DPM++ 2M", "Automatic") == ("dpmpp_2m_karras", None)
    assert a1111_scheduler("DPM++ 2M Karras", None) == ("dpmpp_2m_karras", None)  # before 1.9
    assert a1111_scheduler("DPM++ 2M", None) == ("dpmpp_2m", None)  # before 1.9: uniform
    assert a1111_scheduler("Euler a", "Automatic") == ("euler_a", None)
    assert a1111_scheduler("DPM++ SDE Karras", None) == ("dpmpp_sde_karras", None)
    ours, note = a1111_scheduler("Euler", "Karras")
    assert ours == "euler" and "Karras" in note
    ours, note = a1111_scheduler("DPM++ 2M SDE", "Exponential")
    assert ours is None and "DPM++ 2M SDE" in note


def test_values_with_commas_are_quoted_as_a1111_does():
    rec = _record(model={**_record()["model"], "name": "mix, v2: final"},
                  loras=[{"name": "detail", "weight": 0.6, "sha256": "ab" * 32},
                         {"name": "style:x", "weight": 1.0, "a1111_hash": "0123456789ab"}],
                  prompt="fox <lora:detail:0.6>")
    text = a1111_parameters(rec)
    assert 'Model: "mix, v2: final"' in text
    assert 'Lora hashes: "detail: ababababab' in text
    assert "style:x: 0123456789ab" in text
    # A LoRA given outside the prompt gets a tag, so A1111 applies it too; one already there is not repeated.
    assert text.split("\n")[0] == "fox <lora:detail:0.6> <lora:style:x:1>"
    prompt, negative, settings = split_a1111(text)
    assert settings["Model"] == "mix, v2: final"
    assert settings["Lora hashes"].startswith("detail: abab")


def test_img2img_variation_clip_skip_and_inpaint_fields():
    text = a1111_parameters(_record(mode="inpaint", strength=0.55, variation_seed=77, variation_strength=0.3,
                                    clip_skip=2, mask_blur=4, inpaint_only_masked=True, inpaint_padding=32))
    settings = split_a1111(text)[2]
    assert settings["Denoising strength"] == "0.55"
    assert settings["Variation seed"] == "77" and settings["Variation seed strength"] == "0.3"
    assert settings["Clip skip"] == "2"
    assert settings["Mask blur"] == "4" and settings["Inpaint area"] == "Only masked"
    txt = split_a1111(a1111_parameters(_record(variation_seed=77, variation_strength=0.0)))[2]
    assert "Variation seed" not in txt and "Denoising strength" not in txt and "Clip skip" not in txt


def test_json_chunk_holds_the_whole_record(tmp_path):
    rec = _record(extra_thing={"nested": [1, 2]}, init_image=b"\x89PNG....")
    path = _png(tmp_path, rec)
    back = read_record(path)
    assert back["seed"] == 3141592653 and back["model"]["sha256"] == SHA
    assert back["extra_thing"] == {"nested": [1, 2]}
    assert back["init_image"] == "<8 bytes>"
    with Image.open(path) as im:
        assert json.loads(im.info[metadata.OUR_KEY]) == back  # Pillow sees the same chunk


UNICODE_PROMPTS = [
    "a cat 🐱 sitting on 東京タワー, 🇯🇵, 👩‍👩‍👧‍👦 family",
    "Ñandú, café crème — «guillemets» ½",  # Latin-1 only: stays a tEXt chunk
    "Привет мир, ελληνικά, עברית, العربية, हिन्दी",
    "zero\u200bwidth, combining e\u0301, right-to-left \u202emark",
]


@pytest.mark.parametrize("prompt", UNICODE_PROMPTS)
def test_unusual_unicode_round_trips(tmp_path, prompt):
    negative = "😡 ugly, 醜い"
    path = _png(tmp_path, _record(prompt=prompt, negative_prompt=negative))
    meta = read_image_metadata(path)
    assert meta.prompt == prompt and meta.negative_prompt == negative
    with Image.open(path) as im:
        im.load()
        assert im.text["parameters"].split("\nNegative prompt: ")[0] == prompt
    info = ParserManager().parse(path)
    assert info.full_prompt == prompt and info.full_negative_prompt == negative
    # The A1111 text alone (another app reading only `parameters`) gives the same prompt.
    assert split_a1111(metadata.a1111_parameters(_record(prompt=prompt)))[0] == prompt


def test_latin1_text_stays_text_chunk_and_other_text_goes_itxt(tmp_path):
    latin = _png(tmp_path, _record(prompt="café"), "a.png").read_bytes()
    emoji = _png(tmp_path, _record(prompt="🦊"), "b.png").read_bytes()
    assert b"tEXtparameters" in latin and b"iTXtparameters" not in latin
    assert b"iTXtparameters" in emoji
    assert b"tEXtaigc_desktop" in emoji  # our JSON is ASCII (escaped), always a plain tEXt


def test_unencodable_text_does_not_break_saving(tmp_path):
    # A lone surrogate (a broken paste) cannot be UTF-8; NUL cannot be in a PNG text chunk.
    path = _png(tmp_path, _record(prompt="bad \ud800 surrogate and nul\0 here"))
    meta = read_image_metadata(path)
    assert meta.prompt == "bad \ud800 surrogate and nul\0 here"  # exact, from the JSON
    with Image.open(path) as im:
        im.load()
        assert "surrogate" in im.text["parameters"] and "\0" not in im.text["parameters"]


def test_failed_save_leaves_no_file(tmp_path):
    class Broken:
        def save(self, path, **kwargs):
            open(path, "wb").write(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError):
        save_png(Broken(), tmp_path / "x.png", _record())
    assert list(tmp_path.iterdir()) == []


def test_stylegan_and_fake_records(tmp_path):
    sg = {"engine": "stylegan", "app_version": "0.1.0", "seed": 42, "width": 256, "height": 256,
          "model": {"name": "ffhq-256", "sha256": "cd" * 32, "path": "/m/ffhq.pkl"}, "psi": 0.7,
          "noise_mode": "const", "mixing": {"seed": 7, "layers": [0, 4]}, "class_idx": None}
    text = a1111_parameters(sg)
    assert text.startswith("Seed: 42, Size: 256x256, Model hash: cdcdcdcdcd, Model: ffhq-256, ")
    assert "Truncation psi: 0.7" in text and "Noise mode: const" in text
    assert 'Style mixing: "{\\"seed\\":7,\\"layers\\":[0,4]}"' in text and "Engine: StyleGAN" in text
    path = _png(tmp_path, sg, "sg.png")
    meta = read_image_metadata(path)
    assert meta.source == "aigc-desktop" and meta.engine == "stylegan" and meta.seed == 42
    assert meta.extra["psi"] == 0.7 and meta.extra["mixing"] == {"seed": 7, "layers": [0, 4]}
    assert split_a1111(text)[2]["Truncation psi"] == "0.7"
    with pytest.raises(Exception, match="stylegan"):
        record_to_params(sg)
    fake = {"engine": "fake", "app_version": "0.1.0", "prompt": "fake", "seed": 3, "width": 64, "height": 64,
            "steps": 5}
    meta = read_image_metadata(_png(tmp_path, fake, "fake.png"))
    assert (meta.prompt, meta.seed, meta.steps, meta.width) == ("fake", 3, 5, 64)
    assert a1111_parameters(fake).split("\n")[1].startswith("Seed: 3, Size: 64x64, Steps: 5")


def test_stylegan_engine_record_text():
    """The StyleGAN engine's record shape: derived values and the default pose stay out of the text."""
    rec = {"app": "aigc-desktop", "app_version": "0.1.0", "engine": "stylegan",
           "model": {"name": "ffhq", "sha256": "ab" * 32, "path": "/m/ffhq.pkl", "kind": "stylegan"},
           "seed": 42, "z": "np.random.RandomState(seed).randn(1, z_dim)", "truncation_psi": 0.7,
           "truncation_cutoff": None, "noise_mode": "const", "class_idx": None, "mix_seed": 7, "mix_layers": "coarse",
           "mix_layer_indices": [0, 1, 2, 3], "translate": [0.0, 0.0], "rotate": 0.0, "width": 256, "height": 256,
           "device": "cpu", "dtype": "fp32"}
    assert a1111_parameters(rec) == ("Seed: 42, Size: 256x256, Model hash: ababababab, Model: ffhq, Truncation psi: 0.7, "
                                     "Noise mode: const, Style mixing seed: 7, Style mixing layers: coarse, "
                                     "Engine: StyleGAN, Version: aigc-desktop 0.1.0")
    assert "Rotate: 5" in a1111_parameters({**rec, "rotate": 5.0})


def test_record_to_params_keeps_everything():
    rec = _record(mode="img2img", strength=0.4, init_image="/imgs/in.png", variation_seed=5,
                  variation_strength=0.25, clip_skip=2, base_seed=100, batch_index=3, seed=103,
                  loras=[{"name": "a", "path": "/l/a.safetensors", "weight": 0.5, "source": "cli"},
                         {"name": "b", "path": "/l/b.safetensors", "weight": 0.8}],
                  prompt="x <lora:b:0.8>")
    ref, params = record_to_params(rec)
    assert ref.path == "/models/v1-5-pruned-emaonly.safetensors" and ref.kind == "checkpoint"
    assert ref.family == "sd1" and ref.prediction_type == "epsilon"
    assert params.seed == 103 and params.batch_size == 1 and params.batch_count == 1
    assert (params.steps, params.cfg_scale, params.width, params.height) == (28, 6.5, 512, 768)
    assert params.scheduler == "dpmpp_2m_karras" and params.mode == "img2img" and params.strength == 0.4
    assert params.init_image == "/imgs/in.png" and params.clip_skip == 2
    assert (params.variation_seed, params.variation_strength) == (5, 0.25)
    assert [(l.path, l.weight) for l in params.loras] == [("/l/a.safetensors", 0.5)]  # b is in the prompt


@pytest.fixture(scope="module")
def engine():
    import torch

    from aigc_desktop.engines.diffusion.engine import DiffusionEngine

    torch.set_num_threads(1)
    eng = DiffusionEngine()
    yield eng
    eng.close()


def _same_pixels(path, image) -> bool:
    with Image.open(path) as saved:
        return np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(image.convert("RGB")))


@pytest.mark.parametrize("scheduler", ["euler_a", "dpmpp_sde_karras"])  # both draw noise during sampling
def test_image_regenerates_exactly_from_its_png(tmp_path, tiny_sd_path, engine, scheduler):
    """The second image of a batch with a variation seed, regenerated from its own PNG: exactly, by running
    the batch it was made in again; alone (batch of one), the same picture within rounding."""
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.restore import regeneration

    params = GenerationParams(prompt="a tiny 🦊 test, (fox:1.1)", negative_prompt="blur", seed=1234, steps=3,
                              cfg_scale=5.0, width=72, height=64, scheduler=scheduler, batch_size=2,
                              variation_seed=99, variation_strength=0.4)
    job = DiffusionJob(model=ModelRef(str(tiny_sd_path)), params=params)
    first = engine.run(job, lambda e: None, lambda: False)
    path = save_png(first.images[1], tmp_path / "gen.png", first.records[1])

    record = read_record(path)
    ref, alone = record_to_params(record)
    assert ref.path == str(tiny_sd_path) and alone.batch_size == 1
    assert (alone.seed, alone.variation_seed, alone.variation_strength) == (1234, 100, 0.4)
    again = regeneration(record)
    p = again.job.params
    assert (again.index, p.batch_size, p.batch_count) == (1, 2, 1)
    assert (p.seed, p.variation_seed, p.variation_strength) == (1234, 99, 0.4)  # the batch's first image
    second = engine.run(again.job, lambda e: None, lambda: False)
    assert _same_pixels(path, second.images[again.index])  # the same computation: the same pixels
    # Alone it is a batch of one, another computation (kernels block and reduce a batch of 2 CFG pairs
    # differently from a batch of 1): measured under default / AVX2 here, AVX-512 elsewhere, 0 to 1 level
    # on a few values; the default bound of image_compare holds that and fails for any other image.
    lone = engine.run(regeneration(record, alone=True).job, lambda e: None, lambda: False)
    saved = Image.open(path)
    assert_images_close(saved, lone.images[0], what="image 2 of a batch of 2 regenerated alone")
    assert_images_differ(saved, first.images[0], what="image 2 and image 1")  # not just any image of the model
    info = ParserManager().parse(path)
    assert info.full_prompt == params.prompt and info.samplers[0].parameters["seed"] == "1234"
    assert info.metadata["Variation seed"] == "100"


def test_image_of_a_later_batch_regenerates_exactly(tmp_path, tiny_sd_path, engine):
    """Image 4 of 2 batches of 2 (seeds 1234..1237): its record runs the batch of seeds 1236, 1237 again."""
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.restore import regeneration

    params = GenerationParams(prompt="a fox", negative_prompt="blur", seed=1234, steps=2, cfg_scale=5.0, width=64,
                              height=64, scheduler="euler_a", batch_size=2, batch_count=2)
    first = engine.run(DiffusionJob(model=ModelRef(str(tiny_sd_path)), params=params), lambda e: None, lambda: False)
    assert [r["seed"] for r in first.records] == [1234, 1235, 1236, 1237]
    path = save_png(first.images[3], tmp_path / "gen.png", first.records[3])
    again = regeneration(read_record(path))
    p = again.job.params
    assert (again.index, p.seed, p.batch_size, p.batch_count) == (1, 1236, 2, 1)
    second = engine.run(again.job, lambda e: None, lambda: False)
    assert len(second.images) == 2 and _same_pixels(path, second.images[1])
    # A record of a batch of one, or one written before records named their batch, regenerates alone.
    for rec in ({**first.records[3], "batch_size": 1}, {k: v for k, v in first.records[3].items()
                                                         if k != "batch_size"}):
        lone = regeneration(rec)
        assert (lone.index, lone.job.params.seed, lone.job.params.batch_size) == (0, 1237, 1)


def test_img2img_regenerates_with_its_init_image(tmp_path, tiny_sd_path, engine):
    import io

    from aigc_desktop.core.errors import UserError
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.metadata import record_to_job
    from aigc_desktop.core.params import GenerationParams

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 90, 30)).save(buf, "PNG")
    init = tmp_path / "init.png"
    init.write_bytes(buf.getvalue())
    params = GenerationParams(prompt="orange", seed=5, steps=4, width=64, height=64, scheduler="dpmpp_2m",
                              mode="img2img", init_image=str(init), strength=0.6)
    first = engine.run(DiffusionJob(model=ModelRef(str(tiny_sd_path)), params=params), lambda e: None, lambda: False)
    path = save_png(first.images[0], tmp_path / "i2i.png", first.records[0])
    record = read_record(path)
    assert split_a1111(a1111_parameters(record))[2]["Denoising strength"] == "0.6"
    with pytest.raises(UserError, match="needs its init image init.png"):
        record_to_params(record)
    other = tmp_path / "other.png"
    Image.new("RGB", (64, 64)).save(other)
    with pytest.raises(UserError, match="not the one the image was made from"):
        record_to_params(record, init_image=str(other))
    job = record_to_job(record, init_image=init.read_bytes(), exact_device=True)
    assert (job.device, job.dtype, job.params.strength) == ("cpu", "fp32", 0.6)
    second = engine.run(job, lambda e: None, lambda: False)
    assert _same_pixels(path, second.images[0])


def test_cli_image_regenerates_exactly_in_the_engine(tmp_path, tiny_sd_path, engine, capsys):
    """The CLI and the app share the engine: image 2 of a CLI batch regenerates pixel for pixel from its PNG."""
    from aigc_desktop.cli import main
    from aigc_desktop.core.restore import regeneration

    code = main(["generate", "--model", str(tiny_sd_path), "--prompt", "a fox", "--negative", "blur", "--seed", "7",
                 "--steps", "2", "--width", "72", "--height", "64", "--batch", "2", "--out", str(tmp_path / "out") + "/",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    (path,) = [p for p in (tmp_path / "out").glob("*.png") if read_record(p)["batch_index"] == 1]
    again = regeneration(read_record(path))
    assert (again.index, again.job.params.seed, again.job.params.batch_size) == (1, 7, 2)
    second = engine.run(again.job, lambda e: None, lambda: False)
    assert _same_pixels(path, second.images[1])
