"""ComfyUI graphs: the sampler that feeds the saved image, values computed by math / counter nodes reported
as unknown (never guessed), literal primitives followed, and SamplerCustomAdvanced chains."""

from __future__ import annotations

import json

from aigc_desktop.core.metadata import read_image_metadata
from aigc_desktop.core.metadata.comfyui import metadata_from_graph
from tests import metadata_fixtures as fx
from tests.metadata import images as im


def _read(tmp_path, graph):
    return read_image_metadata(fx.png_with(tmp_path / "g.png", {"prompt": json.dumps(graph)}))


def test_stray_sampler_is_ignored(tmp_path):
    m = _read(tmp_path, im.comfy_stray_sampler())
    # node 1 has the lower id and would be "first"; it feeds nothing the SaveImage node saves
    assert (m.seed, m.steps, m.cfg_scale, m.scheduler) == (156680208700286, 20, 8.0, "euler")
    assert m.prompt.startswith("beautiful scenery") and m.negative_prompt == "text, watermark"
    assert any("node 1 (KSampler) does not feed the saved image" in n for n in m.not_restored)
    assert m.field_sources["seed"] == "PNG tEXt chunk 'prompt', node 3 (KSampler)"


def test_the_saved_branch_wins_over_a_preview_of_another(tmp_path):
    graph = im.comfy_stray_sampler()
    graph["20"] = {"inputs": {"samples": ["1", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"}
    graph["21"] = {"inputs": {"images": ["20", 0]}, "class_type": "PreviewImage"}
    m = _read(tmp_path, graph)
    assert m.seed == 156680208700286 and m.steps == 20


def test_math_node_feeding_the_size_is_unknown(tmp_path):
    m = _read(tmp_path, im.comfy_math_size())
    assert m.width is None and m.height is None  # not 2x2 (its literal input), not 512 (the primitive)
    assert any(u.startswith("size: comes from node 30 (SimpleMath+)") for u in m.unreadable)
    assert m.seed == 156680208700286  # everything else still read


def test_counter_feeding_the_seed_is_unknown_but_a_primitive_is_followed(tmp_path):
    m = _read(tmp_path, im.comfy_counter_seed())
    assert m.seed is None  # not 0 (the counter's start)
    assert any(u.startswith("seed: comes from node 40 (CounterNode)") for u in m.unreadable)
    assert m.steps == 33 and m.field_sources["steps"].endswith("node 41 (PrimitiveInt)")


def test_binary_operation_of_literals_is_unknown():
    graph = im.comfy_counter_seed(primitive_steps=False)
    graph["40"] = {"inputs": {"op": "Multiply", "a": 2, "b": 0}, "class_type": "CM_IntBinaryOperation"}
    assert metadata_from_graph(graph).seed is None
    graph["40"] = {"inputs": {"value": 12345}, "class_type": "Seed (rgthree)"}  # a literal seed node
    assert metadata_from_graph(graph).seed == 12345


def test_reroute_to_a_primitive_is_followed():
    graph = im.comfy_counter_seed(primitive_steps=False)
    graph["40"] = {"inputs": {"input": ["42", 0]}, "class_type": "Reroute"}
    graph["42"] = {"inputs": {"seed": 777}, "class_type": "CR Seed"}
    m = metadata_from_graph(graph)
    assert m.seed == 777 and m.field_sources["seed"] == "node 42 (CR Seed)"


def test_sampler_custom_advanced_chain(tmp_path):
    m = _read(tmp_path, im.COMFY_CUSTOM_ADVANCED_SDXL)
    assert (m.seed, m.steps, m.cfg_scale, m.width, m.height) == (90210, 28, 4.5, 832, 1216)
    assert (m.sampler, m.scheduler) == ("dpmpp_2m / karras", "dpmpp_2m_karras")
    assert (m.prompt, m.negative_prompt) == ("a red fox in the snow", "blurry")
    assert m.model_name == "juggernautXL.safetensors"
    src = m.field_sources
    assert src["seed"].endswith("node 10 (RandomNoise)") and src["cfg_scale"].endswith("node 11 (CFGGuider)")
    assert src["sampler"].endswith("node 12 (KSamplerSelect)") and src["steps"].endswith("node 13 (BasicScheduler)")
    assert src["width"].endswith("node 14 (EmptyLatentImage)")
    assert not any("sampler" in n for n in m.not_restored)  # the guider / select nodes are not samplers


def test_sampler_custom_advanced_karras_node_and_computed_steps():
    graph = json.loads(json.dumps(im.COMFY_CUSTOM_ADVANCED_SDXL))
    graph["13"] = {"inputs": {"steps": ["50", 0], "sigma_max": 14.6, "sigma_min": 0.03, "rho": 7},
                   "class_type": "KarrasScheduler"}
    graph["50"] = {"inputs": {"a": 20, "b": 8}, "class_type": "IntAdd"}
    m = metadata_from_graph(graph)
    assert m.scheduler == "dpmpp_2m_karras" and m.steps is None
    assert any(u.startswith("steps: comes from node 50 (IntAdd)") for u in m.unreadable)


def test_hostile_graphs_end():
    """A diamond of combine nodes 60 deep (2^60 paths) and a self-loop end quickly with what is readable."""
    graph = json.loads(json.dumps(fx.COMFY_DEFAULT_PROMPT))
    previous = ["6", 0]
    for i in range(100, 160):
        graph[str(i)] = {"inputs": {"conditioning_1": previous, "conditioning_2": previous},
                         "class_type": "ConditioningCombine"}
        previous = [str(i), 0]
    graph["3"]["inputs"]["positive"] = previous
    graph["3"]["inputs"]["cfg"] = ["99", 0]
    graph["99"] = {"inputs": {"input": ["99", 0]}, "class_type": "Reroute"}
    graph["²"] = {"inputs": {"seed": 1, "steps": 1, "positive": ["6", 0], "negative": ["6", 0],
                             "latent_image": ["5", 0]}, "class_type": "KSampler"}  # a non-ASCII digit id
    m = metadata_from_graph(graph)
    assert m.seed == 156680208700286 and m.cfg_scale is None


def test_sampler_custom_and_a_latent_without_width_and_height():
    graph = json.loads(json.dumps(im.COMFY_CUSTOM_ADVANCED_SDXL))
    graph["15"] = {"inputs": {"add_noise": True, "noise_seed": 4321, "cfg": 6.0, "model": ["4", 0],
                              "positive": ["6", 0], "negative": ["7", 0], "sampler": ["12", 0], "sigmas": ["13", 0],
                              "latent_image": ["14", 0]}, "class_type": "SamplerCustom"}
    graph["14"] = {"inputs": {"dimensions": "1024 x 1024 (square)", "clip_scale": 2, "batch_size": 1},
                   "class_type": "SDXL Empty Latent Image (rgthree)"}
    m = metadata_from_graph(graph)
    assert (m.seed, m.steps, m.cfg_scale, m.scheduler) == (4321, 28, 6.0, "dpmpp_2m_karras")
    assert m.width is None and m.unreadable == [
        "size: node 14 (SDXL Empty Latent Image (rgthree)) does not give it as a width and height"]
