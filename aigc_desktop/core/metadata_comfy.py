"""ComfyUI metadata: follow the saved graph from its sampler to the prompts, model, LoRAs and size.

ComfyUI's SaveImage writes two chunks: `prompt`, the API graph that ran ({id: {class_type, inputs}}, an
input being a value or a link [source id, output slot]), and `workflow`, the editor's graph (nodes with
positional `widgets_values`, links in a separate list). The API graph is used when present; the editor
graph is converted to the same shape otherwise (primitive nodes, reroutes, muted and bypassed nodes too).

The walk is generic rather than a list of node classes: a sampler is a node with positive/negative
conditioning and steps/seed/sampler settings (KSampler, KSamplerAdvanced, SamplerCustom(Advanced) through
its guider/sampler/sigmas/noise nodes, and custom nodes shaped alike); a prompt is a `text` (or SDXL
`text_g`) input reached from the sampler's conditioning through any conditioning nodes; a value linked
from another node (primitive, string literal, reroute) is followed to that node's own value.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from aigc_desktop.core.metadata import ImageMetadata, LoraUse, to_float, to_int
from aigc_desktop.core.metadata_readers import comfy_scheduler

_MAX_DEPTH = 64
_CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
_VIA = ("noise", "guider", "sampler", "sigmas")  # SamplerCustomAdvanced's settings live in these nodes
_PASS_THROUGH = {"Reroute", "PrimitiveNode"}

# Widget order of core nodes in the editor graph (`widgets_values`), for workflows without an API graph.
# "control_after_generate" is the editor's extra widget after a seed; it is skipped when present.
_WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", "control_after_generate", "steps", "cfg", "sampler_name",
                         "scheduler", "start_at_step", "end_at_step", "return_with_leftover_noise"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "VAELoader": ("vae_name",),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width", "target_height",
                           "text_g", "text_l"),
    "CLIPTextEncodeSDXLRefiner": ("ascore", "width", "height", "text"),
    "CLIPSetLastLayer": ("stop_at_clip_layer",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "LatentUpscale": ("upscale_method", "width", "height", "crop"),
    "LatentUpscaleBy": ("upscale_method", "scale_by"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "PrimitiveNode": ("value", "control_after_generate"),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "RandomNoise": ("noise_seed", "control_after_generate"),
    "CFGGuider": ("cfg",),
    "SamplerCustom": ("add_noise", "noise_seed", "control_after_generate", "cfg"),
    "LoadImage": ("image", "upload"),
    "VAEEncodeForInpaint": ("grow_mask_by",),
}


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def _file_stem(name: Any) -> str:
    """"SDXL\\juggernaut_v9.safetensors" -> "juggernaut_v9" (ComfyUI names include sub-folders)."""
    text = str(name).replace("\\", "/")
    return PurePosixPath(text).stem if "." in PurePosixPath(text).name else PurePosixPath(text).name


# ------------------------------------------------------------------------------------------ editor graph


def _links_of(workflow: dict[str, Any]) -> dict[Any, tuple[Any, int]]:
    """link id -> (origin node id, origin slot); lists (format 0.4) or objects (format 1)."""
    out = {}
    for link in workflow.get("links") or []:
        if isinstance(link, list) and len(link) >= 5:
            out[link[0]] = (link[1], link[2])
        elif isinstance(link, dict) and "id" in link:
            out[link["id"]] = (link.get("origin_id"), link.get("origin_slot", 0))
    return out


def _widget_inputs(node_type: str, values: Any) -> dict[str, Any]:
    if isinstance(values, dict):  # some custom nodes save named values
        return dict(values)
    if not isinstance(values, list):
        return {}
    names = _WIDGETS.get(node_type)
    if names is None:
        return {f"widget_{i}": v for i, v in enumerate(values)}
    out, i = {}, 0
    for name in names:
        if i >= len(values):
            break
        if name == "control_after_generate":
            if isinstance(values[i], str) and values[i] in _CONTROL_VALUES:
                i += 1
            continue
        out[name] = values[i]
        i += 1
    return out


def workflow_to_api(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The editor graph in the API graph's shape. Muted nodes (mode 2) are dropped; bypassed ones (mode 4)
    are kept but marked, so a walk passes through them without using them."""
    links = _links_of(workflow)
    graph: dict[str, dict[str, Any]] = {}
    for node in workflow.get("nodes") or []:
        if not isinstance(node, dict) or node.get("mode") == 2 or "id" not in node:
            continue
        node_type = str(node.get("type") or "")
        inputs = _widget_inputs(node_type, node.get("widgets_values"))
        for slot in node.get("inputs") or []:
            if isinstance(slot, dict) and slot.get("link") is not None and slot["link"] in links:
                origin, origin_slot = links[slot["link"]]
                inputs[str(slot.get("name") or "input")] = [str(origin), int(origin_slot or 0)]
        entry = {"class_type": node_type, "inputs": inputs}
        if node.get("mode") == 4:
            entry["bypassed"] = True
        graph[str(node["id"])] = entry
    return graph


# ------------------------------------------------------------------------------------------ the walk


class _Graph:
    def __init__(self, nodes: dict[str, dict[str, Any]], meta: ImageMetadata) -> None:
        self.nodes = {str(k): v for k, v in nodes.items() if isinstance(v, dict)}
        self.meta = meta

    def target(self, value: Any) -> tuple[str, dict[str, Any]] | None:
        if _is_link(value) and str(value[0]) in self.nodes:
            node = self.nodes[str(value[0])]
            return str(value[0]), node
        return None

    @staticmethod
    def inputs(node: dict[str, Any]) -> dict[str, Any]:
        inputs = node.get("inputs")
        return inputs if isinstance(inputs, dict) else {}

    def scalar(self, value: Any, name: str, depth: int = 0) -> Any:
        """A value, or the value a link leads to: the source's own input of the same name, its only value
        (primitive, string literal), or through its only link (reroute)."""
        if not _is_link(value):
            return value
        hit = self.target(value)
        if hit is None or depth > _MAX_DEPTH:
            return None
        inputs = self.inputs(hit[1])
        if name in inputs:
            return self.scalar(inputs[name], name, depth + 1)
        for key in ("value", "text", "string", "String", "STRING", "Text", "int", "float", "number", "seed"):
            if key in inputs and not _is_link(inputs[key]):
                return inputs[key]
        plain = [v for k, v in inputs.items() if not _is_link(v) and k != "control_after_generate"]
        if len(plain) == 1:
            return plain[0]
        linked = [v for v in inputs.values() if _is_link(v)]
        if len(linked) == 1:
            return self.scalar(linked[0], name, depth + 1)
        return None

    def _places(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """Where a sampler's settings are: its own inputs, then its noise / guider / sampler / sigmas nodes'."""
        inputs = self.inputs(node)
        return [inputs] + [self.inputs(hit[1]) for via in _VIA if (hit := self.target(inputs.get(via)))]

    def setting(self, node: dict[str, Any], *names: str) -> Any:
        """A sampler setting's value (the first of `names` found)."""
        for name in names:
            for place in self._places(node):
                if name in place:
                    return self.scalar(place[name], name)
        return None

    def setting_link(self, node: dict[str, Any], *names: str) -> Any:
        """A sampler input that is a link (conditioning, model, latent)."""
        for name in names:
            for place in self._places(node):
                if _is_link(place.get(name)):
                    return place[name]
        return None

    def chain(self, value: Any, keys: tuple[str, ...]):
        """(id, node, class, inputs) along a chain of links: on from each node through the first of `keys`
        that is a link, else through its only link (reroutes, one-input nodes); loops end at _MAX_DEPTH."""
        for _ in range(_MAX_DEPTH):
            hit = self.target(value)
            if hit is None:
                return
            inputs = self.inputs(hit[1])
            yield hit[0], hit[1], str(hit[1].get("class_type", "")), inputs
            value = next((inputs[k] for k in keys if _is_link(inputs.get(k))), None)
            if value is None:
                linked = [v for v in inputs.values() if _is_link(v)]
                value = linked[0] if len(linked) == 1 else None

    # -- samplers
    def is_sampler(self, node: dict[str, Any]) -> bool:
        if node.get("bypassed"):
            return False
        keys = set(self.inputs(node))
        if {"positive", "negative"} <= keys and keys & {"steps", "seed", "noise_seed", "sampler_name", "cfg", "sigmas"}:
            return True
        return {"guider", "sampler", "sigmas"} <= keys or "KSampler" in str(node.get("class_type", ""))

    def samplers(self) -> list[str]:
        ids = [i for i, n in self.nodes.items() if self.is_sampler(n)]
        return sorted(ids, key=lambda i: (0, int(i)) if i.isdigit() else (1, i))

    # -- latent (size, mode, earlier passes)
    def latent(self, value: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"upstream": None, "upscaled": False, "mode": "txt2img"}
        for node_id, node, cls, inputs in self.chain(value, ("samples", "latent", "latent_image", "destination")):
            if self.is_sampler(node):
                info["upstream"] = node_id
                break
            if "Upscale" in cls:
                info["upscaled"] = True
            elif "pixels" in inputs or "VAEEncode" in cls:
                info["mode"] = "inpaint" if ("Inpaint" in cls or "mask" in inputs) else "img2img"
                break
            elif "NoiseMask" in cls:
                info["mode"] = "inpaint"
            elif "width" in inputs and "height" in inputs and "width" not in info:
                info["width"] = to_int(self.scalar(inputs["width"], "width"))
                info["height"] = to_int(self.scalar(inputs["height"], "height"))
                info["batch"] = to_int(self.scalar(inputs.get("batch_size"), "batch_size"))
                break
        return info

    # -- prompts
    def texts(self, value: Any, role: str, depth: int = 0) -> list[str]:
        hit = self.target(value)
        if hit is None or depth > _MAX_DEPTH:
            return []
        _, node = hit
        cls = str(node.get("class_type", ""))
        inputs = self.inputs(node)
        if not node.get("bypassed"):
            if "text_g" in inputs or "text_l" in inputs:
                g = self.scalar(inputs.get("text_g"), "text_g")
                l = self.scalar(inputs.get("text_l"), "text_l")
                if isinstance(l, str) and l.strip() and l != g:
                    self.meta.note("separate CLIP-L prompt (text_l) of SDXL")
                return [t for t in (g if isinstance(g, str) else l,) if isinstance(t, str)]
            if "text" in inputs:
                text = self.scalar(inputs["text"], "text")
                return [text] if isinstance(text, str) else []
            if "ZeroOut" in cls:  # an empty negative (SD3 / Flux workflows)
                return []
            self._note_conditioning(cls, inputs)
        if _is_link(inputs.get(role)):
            return self.texts(inputs[role], role, depth + 1)
        linked = [(k, v) for k, v in inputs.items() if _is_link(v)]
        parts = [v for k, v in linked if "cond" in k.lower()]
        if not parts and len(linked) == 1:  # reroutes and other one-input pass-throughs
            parts = [linked[0][1]]
        out: list[str] = []
        for part in parts:
            out += self.texts(part, role, depth + 1)
        if len(out) > 1:
            self.meta.note(f"combined conditioning ({cls})")
        return out

    def _note_conditioning(self, cls: str, inputs: dict[str, Any]) -> None:
        if "control_net" in inputs or "ControlNet" in cls:
            self.meta.note("ControlNet")
        elif "IPAdapter" in cls or "ipadapter" in inputs:
            self.meta.note("IP-Adapter")
        elif "SetArea" in cls or "SetMask" in cls:
            self.meta.note("regional conditioning")
        elif "Timestep" in cls:
            self.meta.note("conditioning timestep range")

    # -- model chain
    def model(self, value: Any) -> tuple[str | None, list[LoraUse], list[str]]:
        loras: list[LoraUse] = []
        patches: list[str] = []
        for _, node, cls, inputs in self.chain(value, ("model",)):
            for key in ("ckpt_name", "unet_name"):
                name = self.scalar(inputs.get(key), key)
                if isinstance(name, str) and name:
                    if key == "unet_name":
                        patches.append("diffusion-model-only loader (separate text encoders / VAE)")
                    return name, loras[::-1], patches
            if not node.get("bypassed"):
                if "lora_name" in inputs:
                    strength = inputs.get("strength_model", inputs.get("strength"))
                    weight = to_float(self.scalar(strength, "strength_model"))
                    loras.append(LoraUse(_file_stem(self.scalar(inputs["lora_name"], "lora_name")),
                                         1.0 if weight is None else weight))
                else:
                    stacked = [v for v in inputs.values() if isinstance(v, dict) and v.get("lora")]
                    for item in stacked:  # rgthree's Power Lora Loader: {"on", "lora", "strength"}
                        if item.get("on", True):
                            loras.append(LoraUse(_file_stem(item["lora"]), to_float(item.get("strength")) or 1.0))
                    if not stacked and cls not in _PASS_THROUGH and cls:
                        patches.append(f"model patch {cls}")
        return None, loras[::-1], patches

    def clip_skip(self, conditioning: Any) -> int | None:
        """CLIPSetLastLayer on the text encoder of the positive prompt: stop_at_clip_layer -2 = clip skip 2."""
        for _, _, _, inputs in self.chain(conditioning, ("clip", "conditioning", "conditioning_1", "conditioning_to")):
            if "stop_at_clip_layer" in inputs:
                layer = to_int(self.scalar(inputs["stop_at_clip_layer"], "stop_at_clip_layer"))
                return -layer if layer is not None and layer < 0 else None
        return None


def _load(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_comfyui(prompt_text: str | None, workflow_text: str | None) -> ImageMetadata | None:
    """ImageMetadata from ComfyUI's `prompt` (API graph) and/or `workflow` (editor graph) chunks."""
    nodes = _load(prompt_text)
    if not (isinstance(nodes, dict) and any(isinstance(v, dict) and "class_type" in v for v in nodes.values())):
        workflow = _load(workflow_text)
        if not (isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list)):
            return None
        nodes = workflow_to_api(workflow)
    meta = ImageMetadata(source="ComfyUI")
    graph = _Graph(nodes, meta)
    samplers = graph.samplers()
    if not samplers:
        meta.note("no sampler node found in the graph")
        return meta
    latents = {sid: graph.latent(graph.setting_link(graph.nodes[sid], "latent_image")) for sid in samplers}
    first = [sid for sid in samplers if latents[sid]["upstream"] is None] or samplers
    primary = first[0]
    _fill_from_sampler(graph, meta, graph.nodes[primary], latents[primary])
    for sid in samplers:
        if sid != primary:
            _note_other_sampler(graph, meta, sid, primary, latents)
    return meta


def _fill_from_sampler(graph: _Graph, meta: ImageMetadata, node: dict[str, Any], latent: dict[str, Any]) -> None:
    meta.seed = to_int(graph.setting(node, "seed", "noise_seed"))
    meta.steps = to_int(graph.setting(node, "steps"))
    meta.cfg_scale = to_float(graph.setting(node, "cfg"))
    sampler_name = graph.setting(node, "sampler_name")
    scheduler = graph.setting(node, "scheduler")
    if isinstance(sampler_name, str):
        meta.sampler = f"{sampler_name} / {scheduler}" if isinstance(scheduler, str) else sampler_name
        meta.scheduler, note = comfy_scheduler(sampler_name, scheduler if isinstance(scheduler, str) else None)
        meta.note(note or "")
    positive = graph.setting_link(node, "positive", "conditioning")
    negative = graph.setting_link(node, "negative")
    texts = graph.texts(positive, "positive")
    meta.prompt = ", ".join(t for t in texts if t.strip()) if texts else None
    negatives = graph.texts(negative, "negative") if negative is not None else []
    meta.negative_prompt = ", ".join(t for t in negatives if t.strip()) if negatives else ("" if texts else None)
    meta.clip_skip = graph.clip_skip(positive)
    name, loras, patches = graph.model(graph.setting_link(node, "model"))
    if name:
        meta.model_name = name
    meta.loras = loras
    for patch in patches:
        meta.note(patch)
    meta.width, meta.height = latent.get("width"), latent.get("height")
    meta.mode = latent["mode"]
    denoise = to_float(graph.setting(node, "denoise"))
    if meta.mode != "txt2img":
        meta.strength = 1.0 if denoise is None else denoise
        meta.note("init image (not stored in the image)")
    elif denoise is not None and denoise < 1.0:
        meta.note(f"denoise {denoise} on an empty latent")
    if latent.get("batch") and latent["batch"] > 1:
        meta.extra["Batch size"] = latent["batch"]
    inputs = graph.inputs(node)
    start, end = to_int(graph.scalar(inputs.get("start_at_step"), "start_at_step")), to_int(
        graph.scalar(inputs.get("end_at_step"), "end_at_step"))
    if meta.steps and ((start or 0) > 0 or (end is not None and end < meta.steps)):
        meta.note(f"partial sampling, steps {start or 0}-{min(end or meta.steps, meta.steps)} of {meta.steps}")
    if str(graph.scalar(inputs.get("add_noise"), "add_noise")).lower() == "disable":
        meta.note("add_noise disabled")


def _note_other_sampler(graph: _Graph, meta: ImageMetadata, sid: str, primary: str,
                        latents: dict[str, dict[str, Any]]) -> None:
    # Does this sampler continue from the primary one (hires fix / refiner), or run on its own?
    chain, seen = latents[sid], set()
    follows = False
    while chain.get("upstream") and chain["upstream"] not in seen:
        seen.add(chain["upstream"])
        if chain["upstream"] == primary:
            follows = True
            break
        chain = latents.get(chain["upstream"], {})
    node = graph.nodes[sid]
    if not follows:
        meta.note(f"another sampler in the graph (node {sid})")
        return
    name, _, _ = graph.model(graph.setting_link(node, "model"))
    if name and meta.model_name and name != meta.model_name:
        meta.note(f"refiner {_file_stem(name)}")
    else:
        upscaled = latents[sid].get("upscaled")
        denoise = graph.setting(node, "denoise")
        what = "hires fix" if upscaled else "second sampling pass"
        meta.note(f"{what} (node {sid}" + (f", denoise {denoise})" if denoise is not None else ")"))
