"""ComfyUI metadata: walk the saved graph back from its output node to the sampler, prompts, model and size.

ComfyUI's SaveImage writes two chunks: `prompt`, the API graph that ran ({id: {class_type, inputs}}, an
input being a value or a link [source id, output slot]), and `workflow`, the editor's graph (nodes with
positional `widgets_values`, links in a separate list). The API graph is used when present; the editor
graph is converted to the same shape otherwise (primitive nodes, reroutes, muted and bypassed nodes too).

The walk is generic rather than a list of node classes:
- the image's sampler is found by walking back from the save / preview node through links, so a stray
  sampler that feeds nothing saved is ignored (and said so); a later pass on the same latent is a hires
  fix or refiner;
- a sampler is a node with positive/negative conditioning, sampling settings and a latent input
  (KSampler, KSamplerAdvanced, SamplerCustom, custom nodes shaped alike), or SamplerCustomAdvanced with
  its noise (seed) / guider (CFG, prompts) / sampler (name) / sigmas (steps, scheduler) nodes;
- a value that comes through a link is taken only from a node that holds it literally (a primitive,
  a string or number node, through reroutes); a value computed when the graph ran (math, counters,
  random, switches) is reported as unknown, never guessed from one of that node's inputs.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import PurePosixPath
from typing import Any

from aigc_desktop.core.metadata.samplers import comfy_scheduler
from aigc_desktop.core.metadata.types import ImageMetadata, LoraUse, json_value, to_float, to_int

_MAX_DEPTH = 64  # link chains longer than this are loops or hostile
_MAX_VISITS = 20_000  # node visits per graph (a diamond of combine nodes must not explode)
_CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
_UI_KEYS = {"control_after_generate", "control_before_generate", "label", "title"}
_VIA = ("noise", "guider", "sampler", "sigmas")  # SamplerCustomAdvanced's settings live in these nodes
_PASS_THROUGH = {"Reroute", "PrimitiveNode"}
_LATENT_KEYS = ("latent_image", "latent", "samples")
# Nodes whose output is computed when the graph runs (their inputs are not the value that came out),
# recognised by a word of their class name: "SimpleMath+", "CM_IntBinaryOperation", "Counter", "Random Seed".
_COMPUTED_WORDS = frozenset(
    "math counter count increment decrement random randomize expression expr eval calc calculator operation op "
    "binary unary switch select selector index add subtract sub multiply mul divide div sum max min compare logic "
    "if concat concatenate join replace wildcard wildcards list batch range pick choose cycle iterator loop "
    "formula modulo mod round floor ceil abs clamp lerp plus minus times power pow sqrt".split())
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def _computed(cls: str) -> bool:
    return cls not in _PASS_THROUGH and any(w.lower() in _COMPUTED_WORDS for w in _WORD.findall(cls))


# Scheduler nodes of SamplerCustom(Advanced) without a `scheduler` input: their class names the schedule.
_SCHEDULE_NODES = {"KarrasScheduler": "karras", "ExponentialScheduler": "exponential",
                   "PolyexponentialScheduler": "polyexponential", "SDTurboScheduler": "sd turbo",
                   "AlignYourStepsScheduler": "align your steps", "BetaSamplingScheduler": "beta",
                   "LaplaceScheduler": "laplace", "VPScheduler": "vp", "GITSScheduler": "gits"}

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
    "KarrasScheduler": ("steps", "sigma_max", "sigma_min", "rho"),
    "ExponentialScheduler": ("steps", "sigma_max", "sigma_min"),
    "SDTurboScheduler": ("steps", "denoise"),
    "AlignYourStepsScheduler": ("model_type", "steps", "denoise"),
    "RandomNoise": ("noise_seed", "control_after_generate"),
    "CFGGuider": ("cfg",),
    "FluxGuidance": ("guidance",),
    "SamplerCustom": ("add_noise", "noise_seed", "control_after_generate", "cfg"),
    "LoadImage": ("image", "upload"),
    "VAEEncodeForInpaint": ("grow_mask_by",),
    "SaveImage": ("filename_prefix",),
}


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def _file_stem(name: Any) -> str:
    """"SDXL\\juggernaut_v9.safetensors" -> "juggernaut_v9" (ComfyUI names include sub-folders)."""
    text = str(name)[:1000].replace("\\", "/")
    return PurePosixPath(text).stem if "." in PurePosixPath(text).name else PurePosixPath(text).name


def _order(node_id: str) -> tuple[int, int | str]:
    return (0, int(node_id)) if node_id.isascii() and node_id.isdigit() and len(node_id) < 18 else (1, node_id)


# ------------------------------------------------------------------------------------------ editor graph


def _links_of(workflow: dict[str, Any]) -> dict[Any, tuple[Any, int]]:
    """link id -> (origin node id, origin slot); lists (format 0.4) or objects (format 1)."""
    out = {}
    links = workflow.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, list) and len(link) >= 5 and isinstance(link[0], (int, str)):
            out[link[0]] = (link[1], link[2])
        elif isinstance(link, dict) and isinstance(link.get("id"), (int, str)):
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
    nodes = workflow.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or node.get("mode") == 2 or not isinstance(node.get("id"), (int, str)):
            continue
        node_type = str(node.get("type") or "")[:200]
        inputs = _widget_inputs(node_type, node.get("widgets_values"))
        slots = node.get("inputs")
        for slot in slots if isinstance(slots, list) else []:
            if not isinstance(slot, dict):
                continue
            link = slot.get("link")
            if isinstance(link, (int, str)) and not isinstance(link, bool) and link in links:
                origin, origin_slot = links[link]
                slot_index = origin_slot if isinstance(origin_slot, int) and not isinstance(origin_slot, bool) else 0
                inputs[str(slot.get("name") or "input")[:200]] = [str(origin), slot_index]
        entry: dict[str, Any] = {"class_type": node_type, "inputs": inputs}
        if node.get("mode") == 4:
            entry["bypassed"] = True
        graph[str(node["id"])] = entry
    return graph


# ------------------------------------------------------------------------------------------ the walk


class _Graph:
    def __init__(self, nodes: dict[str, Any], meta: ImageMetadata) -> None:
        self.nodes = {str(k): v for k, v in nodes.items() if isinstance(v, dict)}
        self.meta = meta
        self.visits = 0

    def spend(self) -> bool:
        """Count one node visit; False once the graph's budget is used up."""
        self.visits += 1
        return self.visits <= _MAX_VISITS

    def target(self, value: Any) -> tuple[str, dict[str, Any]] | None:
        if _is_link(value) and str(value[0]) in self.nodes and self.spend():
            return str(value[0]), self.nodes[str(value[0])]
        return None

    @staticmethod
    def inputs(node: dict[str, Any]) -> dict[str, Any]:
        inputs = node.get("inputs")
        return inputs if isinstance(inputs, dict) else {}

    @staticmethod
    def cls(node: dict[str, Any]) -> str:
        return str(node.get("class_type", ""))[:200]

    def label(self, node_id: str) -> str:
        return f"node {node_id} ({self.cls(self.nodes[node_id])})"

    # -- values
    def resolve(self, value: Any, name: str, depth: int = 0) -> tuple[Any, str | None, str | None]:
        """(value, id of the node that held it literally, why it is unknown) of an input.

        A link is followed to a node that holds the value as a literal: the input of the same name, or
        its only value (primitive, string / number node), through one-link pass-throughs (reroutes,
        conversions). Anything else was computed when the graph ran, and is unknown.
        """
        if not _is_link(value):
            return value, None, None
        hit = self.target(value)
        if hit is None:
            return None, None, f"linked to node {str(value[0])[:40]}, which is not in the graph"
        node_id, node = hit
        cls, inputs = self.cls(node), self.inputs(node)
        links = [v for k, v in inputs.items() if _is_link(v)]
        plain = {k: v for k, v in inputs.items() if not _is_link(v) and k not in _UI_KEYS}
        computed = _computed(cls)
        if not computed and not links:
            if name in plain:
                return plain[name], node_id, None
            if len(plain) == 1:
                return next(iter(plain.values())), node_id, None
        if not computed and len(links) == 1 and not plain and depth < _MAX_DEPTH:
            return self.resolve(links[0], name, depth + 1)
        return None, node_id, f"comes from {self.label(node_id)}, computed when the graph ran"

    def scalar(self, value: Any, name: str) -> Any:
        return self.resolve(value, name)[0]

    def places(self, node_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Where a sampler's settings are: its own inputs, then its noise / guider / sampler / sigmas nodes'
        (through wrappers such as SplitSigmas that pass the same kind on)."""
        node = self.nodes[node_id]
        out = [(node_id, self.inputs(node))]
        for via in _VIA:
            value = self.inputs(node).get(via)
            for _ in range(8):
                hit = self.target(value)
                if hit is None:
                    break
                inputs = self.inputs(hit[1])
                out.append((hit[0], inputs))
                if "Split" in self.cls(hit[1]) or "Flip" in self.cls(hit[1]):
                    self.meta.note(f"sigmas changed by {self.label(hit[0])}")
                value = inputs.get(via)
        return out

    def setting(self, node_id: str, field: str, *names: str) -> Any:
        """A sampler setting's value (the first of `names` found); where it came from goes into the
        metadata's field sources, why it is unknown into its unreadable list."""
        for name in names:
            for place_id, place in self.places(node_id):
                if name in place:
                    value, literal_id, why = self.resolve(place[name], name)
                    if why:
                        self.meta.cannot_read(f"{field}: {why}")
                        return None
                    if value is not None:
                        self.meta.field_sources.setdefault(field, self.label(literal_id or place_id))
                    return value
        return None

    def setting_link(self, node_id: str, *names: str) -> Any:
        """A sampler input that is a link (conditioning, model, latent)."""
        for name in names:
            for _, place in self.places(node_id):
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
            yield hit[0], hit[1], self.cls(hit[1]), inputs
            value = next((inputs[k] for k in keys if _is_link(inputs.get(k))), None)
            if value is None:
                linked = [v for v in inputs.values() if _is_link(v)]
                value = linked[0] if len(linked) == 1 else None

    # -- samplers and outputs
    def is_sampler(self, node: dict[str, Any]) -> bool:
        if node.get("bypassed"):
            return False
        keys = set(self.inputs(node))
        cls = self.cls(node)
        if {"guider", "sampler", "sigmas"} <= keys:
            return True
        if not keys & set(_LATENT_KEYS) or cls.endswith("Guider"):
            return False
        if {"positive", "negative"} <= keys and keys & {"steps", "seed", "noise_seed", "sampler_name", "sigmas"}:
            return True
        return "KSampler" in cls and "Select" not in cls

    def outputs(self) -> list[str]:
        """Nodes that save or show images: Save* before Preview* (ComfyUI writes the same graph into each)."""
        found = []
        for node_id, node in self.nodes.items():
            cls = self.cls(node)
            if node.get("bypassed") or not _is_link(self.inputs(node).get("images")):
                continue
            if "Save" in cls or "Preview" in cls or "Output" in cls:
                found.append((0 if "Save" in cls else 1, _order(node_id), node_id))
        return [node_id for *_, node_id in sorted(found)]

    def upstream(self, start: str) -> list[str]:
        """Every node `start` depends on, nearest first (breadth-first over links, each node once)."""
        seen, order, queue = {start}, [], deque([start])
        while queue and self.spend():
            for value in self.inputs(self.nodes[queue.popleft()]).values():
                if _is_link(value) and str(value[0]) in self.nodes and str(value[0]) not in seen:
                    seen.add(str(value[0]))
                    order.append(str(value[0]))
                    queue.append(str(value[0]))
        return order

    # -- latent (size, mode, earlier passes)
    def latent(self, value: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"upstream": None, "upscaled": False, "mode": "txt2img", "last": None}
        for node_id, node, cls, inputs in self.chain(value, ("samples", "latent", "latent_image", "destination")):
            info["last"] = node_id
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
            elif "width" in inputs and "height" in inputs:
                width, wid, why_w = self.resolve(inputs["width"], "width")
                height, hid, why_h = self.resolve(inputs["height"], "height")
                if why_w or why_h:
                    self.meta.cannot_read(f"size: {why_w or why_h}")
                elif to_int(width) and to_int(height):
                    info.update(width=to_int(width), height=to_int(height), size_from=self.label(wid or node_id))
                info["batch"] = to_int(self.scalar(inputs.get("batch_size"), "batch_size"))
                break
        return info

    # -- prompts
    def texts(self, value: Any, role: str, depth: int = 0) -> list[tuple[str, str]]:
        """(text, where) of the prompts that reach a conditioning input."""
        hit = self.target(value)
        if hit is None or depth > _MAX_DEPTH:
            return []
        node_id, node = hit
        cls, inputs = self.cls(node), self.inputs(node)
        if not node.get("bypassed"):
            if "text_g" in inputs or "text_l" in inputs:
                g, gid, why_g = self.resolve(inputs.get("text_g"), "text_g")
                l, _, _ = self.resolve(inputs.get("text_l"), "text_l")
                if isinstance(l, str) and l.strip() and l != g:
                    self.meta.note("separate CLIP-L prompt (text_l) of SDXL")
                text = g if isinstance(g, str) else l
                if why_g and not isinstance(text, str):
                    self.meta.cannot_read(f"{role} prompt: {why_g}")
                return [(text, self.label(gid or node_id))] if isinstance(text, str) else []
            if "text" in inputs:
                text, tid, why = self.resolve(inputs["text"], "text")
                if why:
                    self.meta.cannot_read(f"{role} prompt: {why}")
                return [(text, self.label(tid or node_id))] if isinstance(text, str) else []
            if "ZeroOut" in cls:  # an empty negative (SD3 / Flux workflows)
                return []
            self._note_conditioning(cls, inputs)
        if _is_link(inputs.get(role)):
            return self.texts(inputs[role], role, depth + 1)
        linked = [(k, v) for k, v in inputs.items() if _is_link(v)]
        parts = [v for k, v in linked if "cond" in k.lower()]
        if not parts and len(linked) == 1:  # reroutes and other one-input pass-throughs
            parts = [linked[0][1]]
        out: list[tuple[str, str]] = []
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
        elif "guidance" in inputs and "Flux" in cls:
            guidance = to_float(self.scalar(inputs["guidance"], "guidance"))
            self.meta.note(f"Flux guidance {guidance}" if guidance is not None else "Flux guidance")

    # -- model chain
    def model(self, value: Any) -> tuple[str | None, str | None, list[LoraUse], list[str]]:
        loras: list[LoraUse] = []
        patches: list[str] = []
        for node_id, node, cls, inputs in self.chain(value, ("model",)):
            for key in ("ckpt_name", "unet_name"):
                name = self.scalar(inputs.get(key), key)
                if isinstance(name, str) and name:
                    if key == "unet_name":
                        patches.append("diffusion-model-only loader (separate text encoders / VAE)")
                    return name[:1000], self.label(node_id), loras[::-1], patches
            if not node.get("bypassed"):
                if "lora_name" in inputs:
                    strength = inputs.get("strength_model", inputs.get("strength"))
                    weight = to_float(self.scalar(strength, "strength_model"))
                    loras.append(LoraUse(_file_stem(self.scalar(inputs["lora_name"], "lora_name")),
                                         1.0 if weight is None else weight))
                else:
                    stacked = [v for v in inputs.values() if isinstance(v, dict) and isinstance(v.get("lora"), str)]
                    for item in stacked:  # rgthree's Power Lora Loader: {"on", "lora", "strength"}
                        if item.get("on", True):
                            loras.append(LoraUse(_file_stem(item["lora"]), to_float(item.get("strength")) or 1.0))
                    if not stacked and cls not in _PASS_THROUGH and cls:
                        patches.append(f"model patch {cls}")
        return None, None, loras[::-1], patches

    def clip_skip(self, conditioning: Any) -> int | None:
        """CLIPSetLastLayer on the text encoder of the positive prompt: stop_at_clip_layer -2 = clip skip 2."""
        for _, _, _, inputs in self.chain(conditioning, ("clip", "conditioning", "conditioning_1", "conditioning_to")):
            if "stop_at_clip_layer" in inputs:
                layer = to_int(self.scalar(inputs["stop_at_clip_layer"], "stop_at_clip_layer"))
                return -layer if layer is not None and layer < 0 else None
        return None


def graph_nodes(prompt_text: str | None, workflow_text: str | None,
                problems: list[str] | None = None) -> dict[str, Any] | None:
    """The API graph of ComfyUI's chunks: `prompt` when it is one, else `workflow` converted."""
    nodes = json_value(prompt_text, "the ComfyUI graph (prompt)", problems)
    if isinstance(nodes, dict) and any(isinstance(v, dict) and "class_type" in v for v in nodes.values()):
        return nodes
    workflow = json_value(workflow_text, "the ComfyUI workflow", problems)
    if isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list):
        return workflow_to_api(workflow)
    return None


def parse_comfyui(prompt_text: str | None, workflow_text: str | None,
                  problems: list[str] | None = None) -> ImageMetadata | None:
    """ImageMetadata from ComfyUI's `prompt` (API graph) and/or `workflow` (editor graph) chunks."""
    nodes = graph_nodes(prompt_text, workflow_text, problems)
    return None if nodes is None else metadata_from_graph(nodes)


def metadata_from_graph(nodes: dict[str, Any], source: str = "ComfyUI") -> ImageMetadata:
    meta = ImageMetadata(source=source)
    graph = _Graph(nodes, meta)
    samplers = sorted((i for i, n in graph.nodes.items() if graph.is_sampler(n)), key=_order)
    if not samplers:
        meta.note("no sampler node found in the graph")
        return meta
    feeding = _samplers_feeding_output(graph, samplers)
    for sid in samplers:
        if sid not in feeding:
            meta.note(f"sampler {graph.label(sid)} does not feed the saved image (ignored)")
    latents = {sid: graph.latent(graph.setting_link(sid, *_LATENT_KEYS)) for sid in feeding}
    first = [sid for sid in feeding if latents[sid]["upstream"] is None] or feeding
    primary = first[0]
    _fill_from_sampler(graph, meta, primary, latents[primary])
    for sid in feeding:
        if sid != primary:
            _note_other_sampler(graph, meta, sid, primary, latents)
    if graph.visits > _MAX_VISITS:
        meta.cannot_read(f"the graph is too large to follow completely ({_MAX_VISITS} node visits)")
    return meta


def _samplers_feeding_output(graph: _Graph, samplers: list[str]) -> list[str]:
    """The samplers the saved image depends on, nearest the output node first; all samplers when the
    graph has no output node (a partial graph)."""
    wanted = set(samplers)
    for out in graph.outputs():
        feeding = [i for i in graph.upstream(out) if i in wanted]
        if feeding:
            return feeding
    return samplers


def _fill_from_sampler(graph: _Graph, meta: ImageMetadata, sid: str, latent: dict[str, Any]) -> None:
    node = graph.nodes[sid]
    meta.seed = to_int(graph.setting(sid, "seed", "seed", "noise_seed"))
    meta.steps = to_int(graph.setting(sid, "steps", "steps"))
    meta.cfg_scale = to_float(graph.setting(sid, "cfg_scale", "cfg"))
    if meta.cfg_scale is None and "cfg_scale" not in meta.field_sources:
        guider = graph.target(graph.inputs(node).get("guider"))
        if guider and graph.cls(guider[1]) == "BasicGuider":  # one model call per step: no CFG
            meta.cfg_scale = 1.0
            meta.field_sources["cfg_scale"] = graph.label(guider[0])
    sampler_name = graph.setting(sid, "sampler", "sampler_name")
    scheduler = graph.setting(sid, "scheduler", "scheduler")
    if scheduler is None:
        for place_id, _ in graph.places(sid):
            named = _SCHEDULE_NODES.get(graph.cls(graph.nodes[place_id]))
            if named:
                scheduler = named
                meta.field_sources.setdefault("scheduler", graph.label(place_id))
    if isinstance(sampler_name, str):
        sampler_name = sampler_name[:100]
        shown_schedule = scheduler[:100] if isinstance(scheduler, str) else None
        meta.sampler = f"{sampler_name} / {shown_schedule}" if shown_schedule else sampler_name
        meta.scheduler, note = comfy_scheduler(sampler_name, shown_schedule)
        meta.note(note or "")
        if meta.scheduler:
            meta.field_sources.setdefault("scheduler", meta.field_sources.get("sampler", graph.label(sid)))
    positive = graph.setting_link(sid, "positive", "conditioning")
    negative = graph.setting_link(sid, "negative")
    texts = graph.texts(positive, "positive")
    meta.prompt = ", ".join(t for t, _ in texts if t.strip()) if texts else None
    if texts:
        meta.field_sources["prompt"] = "; ".join(dict.fromkeys(w for _, w in texts))
    negatives = graph.texts(negative, "negative") if negative is not None else []
    meta.negative_prompt = ", ".join(t for t, _ in negatives if t.strip()) if negatives else ("" if texts else None)
    if negatives:
        meta.field_sources["negative_prompt"] = "; ".join(dict.fromkeys(w for _, w in negatives))
    meta.clip_skip = graph.clip_skip(positive)
    name, where, loras, patches = graph.model(graph.setting_link(sid, "model"))
    if name:
        meta.model_name = name
        meta.field_sources["model_name"] = where or graph.label(sid)
    meta.loras = loras
    for patch in patches:
        meta.note(patch)
    meta.width, meta.height = latent.get("width"), latent.get("height")
    if meta.width:
        meta.field_sources["width"] = meta.field_sources["height"] = latent["size_from"]
    elif latent["mode"] == "txt2img" and latent["last"] and not any(u.startswith("size:") for u in meta.unreadable):
        meta.cannot_read(f"size: {graph.label(latent['last'])} does not give it as a width and height")
    meta.mode = latent["mode"]
    denoise = to_float(graph.setting(sid, "strength", "denoise"))
    if meta.mode != "txt2img":
        meta.strength = 1.0 if denoise is None else denoise
        meta.note("init image (not stored in the image)")
    elif denoise is not None and denoise < 1.0:
        meta.note(f"denoise {denoise} on an empty latent")
    if latent.get("batch") and latent["batch"] > 1:
        meta.extra["Batch size"] = latent["batch"]
    inputs = graph.inputs(node)
    start = to_int(graph.scalar(inputs.get("start_at_step"), "start_at_step"))
    end = to_int(graph.scalar(inputs.get("end_at_step"), "end_at_step"))
    if meta.steps and ((start or 0) > 0 or (end is not None and end < meta.steps)):
        meta.note(f"partial sampling, steps {start or 0}-{min(end or meta.steps, meta.steps)} of {meta.steps}")
    if str(graph.scalar(inputs.get("add_noise"), "add_noise")).lower() == "disable":
        meta.note("add_noise disabled")
    for field in ("seed", "steps", "cfg_scale", "mode"):
        if getattr(meta, field) is not None:
            meta.field_sources.setdefault(field, graph.label(sid))


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
    if not follows:
        meta.note(f"another sampler in the graph (node {sid})")
        return
    name, _, _, _ = graph.model(graph.setting_link(sid, "model"))
    if name and meta.model_name and name != meta.model_name:
        meta.note(f"refiner {_file_stem(name)}")
    else:
        upscaled = latents[sid].get("upscaled")
        inputs = graph.inputs(graph.nodes[sid])
        denoise = to_float(graph.scalar(inputs.get("denoise"), "denoise"))
        what = "hires fix" if upscaled else "second sampling pass"
        meta.note(f"{what} (node {sid}" + (f", denoise {denoise})" if denoise is not None else ")"))
