"""Load StyleGAN generators from NVIDIA pickles, rosinality `.pt` files and our own format; convert.

Our format is a folder holding `stylegan.json` (format marker, the generator config of
`Generator.to_config()`, where the weights came from) and `generator.safetensors` (the state dict,
with the same config in its metadata so the file also loads alone).

Nothing here unpickles arbitrary objects: NVIDIA pickles go through `safe_pickle`, rosinality files through
`torch.load(weights_only=True)` allowing only `argparse.Namespace`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aigc_desktop.core import torch_files
from aigc_desktop.core.errors import ModelLoadError, UserError, first_line
from aigc_desktop.core.files import atomic_path, atomic_write
from aigc_desktop.core.safe_io import MiB, load_json_file, loads_json, regular_file
from aigc_desktop.core.safetensors_header import read_header
from aigc_desktop.engines.stylegan import safe_pickle
from aigc_desktop.engines.stylegan.generator import Generator

log = logging.getLogger(__name__)

FORMAT_NAME = "aigc-stylegan"
FORMAT_VERSION = 1
CONFIG_FILE = "stylegan.json"
WEIGHTS_FILE = "generator.safetensors"
METADATA_KEY = "aigc_stylegan_config"

_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, KeyError,
                      OSError)
_BASE_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


@dataclass
class LoadedGenerator:
    G: Generator
    format: str  # nvidia-pickle | rosinality | aigc
    path: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        p = Path(self.path)
        return p.name if p.is_dir() else p.stem


# ----------------------------------------------------------------------------------------- dispatch


def detect_format(path: str | Path) -> str:
    """nvidia-pickle | rosinality | aigc, from the file itself (not trusting the suffix alone)."""
    path = Path(path)
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return "aigc"
        raise ModelLoadError(f"{path.name} is a folder without {CONFIG_FILE}")
    if not path.exists() and not path.is_symlink():
        raise ModelLoadError(f"File not found: {path}")
    regular_file(path, "StyleGAN file")  # a FIFO or device is never opened
    if path.suffix.lower() == ".json" and path.name == CONFIG_FILE:
        return "aigc"
    if path.suffix.lower() == ".safetensors":
        return "aigc"
    if zipfile.is_zipfile(path):
        return "rosinality"  # torch.save's zip container
    with open(path, "rb") as fh:
        head = fh.read(2)
    if len(head) < 2:
        raise ModelLoadError(f"{path.name} is empty or truncated")
    if head[:1] == b"\x80":  # a pickle protocol header
        return "nvidia-pickle"
    raise ModelLoadError(f"{path.name} is not a StyleGAN network pickle, .pt checkpoint or safetensors file")


def load_generator(path: str | Path) -> LoadedGenerator:
    """Load any supported file (on the CPU, float32, eval mode). Raises ModelLoadError with one line."""
    fmt = detect_format(path)
    loader = {"nvidia-pickle": load_nvidia_pickle, "rosinality": load_rosinality, "aigc": load_ours}[fmt]
    loaded = loader(path)
    loaded.G.eval().requires_grad_(False)
    return loaded


def _load_strict(G: Generator, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load by name; any missing, extra or mis-shaped tensor is a clear error (nothing silently skipped)."""
    own = G.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if tuple(own[k].shape) != tuple(tensors[k].shape))
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:4])}{' …' if len(extra) > 4 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape of {k} is {tuple(tensors[k].shape)}, expected {tuple(own[k].shape)}"
                         + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else ""))
        raise ModelLoadError(f"{source} does not match its declared architecture: {'; '.join(parts)}")
    G.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()})


_LIMITS = {"z_dim": (1, 8192), "w_dim": (1, 8192), "c_dim": (0, 100_000), "img_channels": (1, 4),
           "img_resolution": (4, 4096)}
_KWARG_LIMITS = {"num_layers": (1, 64), "channel_base": (1, 1 << 20), "channel_max": (1, 16384),
                 "num_fp16_res": (0, 16)}


def check_generator_config(config: Any, label: str) -> dict[str, Any]:
    """A generator config from a file (ours or a pickle's init arguments): the sizes that decide how much
    memory the network takes are whole numbers in sane ranges, so a forged config never builds a network
    of terabytes. Raises ModelLoadError naming the field and the file."""
    if not isinstance(config, dict):
        raise ModelLoadError(f"{label}: the generator config is malformed (not an object)")
    for key, (lo, hi) in _LIMITS.items():
        v = config.get(key)
        if v is None:
            continue  # missing fields are Generator.from_config's to name
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ModelLoadError(f"{label}: {key} must be a whole number between {lo} and {hi}, "
                                 f"got {str(v)[:24]!r}")
    res = config.get("img_resolution")
    if isinstance(res, int) and res & (res - 1):
        raise ModelLoadError(f"{label}: img_resolution must be a power of 2, got {res}")
    for group in ("mapping_kwargs", "synthesis_kwargs"):
        kwargs = config.get(group)
        if kwargs is None:
            continue
        if not isinstance(kwargs, dict):
            raise ModelLoadError(f"{label}: {group} must be an object, got {type(kwargs).__name__}")
        for key, (lo, hi) in _KWARG_LIMITS.items():
            v = kwargs.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
                raise ModelLoadError(f"{label}: {group}.{key} must be a whole number between {lo} and {hi}, "
                                     f"got {str(v)[:24]!r}")
    return config


# ----------------------------------------------------------------------------------------- NVIDIA pickles


def _network_stub(data: Any, path: Path) -> tuple[safe_pickle.PersistentStub, str]:
    if isinstance(data, safe_pickle.PersistentStub):
        return data, "network"
    if isinstance(data, dict):
        for key in ("G_ema", "G"):
            if isinstance(data.get(key), safe_pickle.PersistentStub):
                return data[key], key
        keys = ", ".join(str(k) for k in list(data)[:6])
        raise ModelLoadError(f"{path.name} holds no generator (G_ema or G); it has: {keys}")
    raise ModelLoadError(f"{path.name} does not hold an NVIDIA network ({type(data).__name__} found)")


def nvidia_config(stub: safe_pickle.PersistentStub, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Our generator config from a pickled Generator's init arguments (falling back to its sub-networks'
    own init arguments and attributes), with the family and StyleGAN2 architecture read from the keys."""
    kwargs = stub.init_kwargs
    for name, value in zip(_BASE_ARGS, stub.init_args):
        kwargs.setdefault(name, value)
    mapping_stub, synthesis_stub = stub.child("mapping"), stub.child("synthesis")
    for name in _BASE_ARGS:
        if name not in kwargs:
            for source in (stub, synthesis_stub, mapping_stub):
                if source is not None and name in source.state:
                    kwargs[name] = source.state[name]
                    break
            else:
                for source in (synthesis_stub, mapping_stub):
                    if source is not None and name in source.init_kwargs:
                        kwargs[name] = source.init_kwargs[name]
                        break
    missing = [n for n in _BASE_ARGS if n not in kwargs]
    if missing:
        raise ModelLoadError(f"the pickled generator does not record {', '.join(missing)}")
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    synthesis_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    # StyleGAN3 (and StyleGAN2 from the StyleGAN3 repo) pass synthesis options as flat keywords.
    for k, v in kwargs.items():
        if k not in _BASE_ARGS and k not in ("mapping_kwargs", "synthesis_kwargs"):
            synthesis_kwargs.setdefault(k, v)
    if not synthesis_kwargs and synthesis_stub is not None:
        synthesis_kwargs = {k: v for k, v in synthesis_stub.init_kwargs.items()
                            if k not in ("w_dim", "img_resolution", "img_channels")}
    if not mapping_kwargs and mapping_stub is not None:
        mapping_kwargs = {k: v for k, v in mapping_stub.init_kwargs.items()
                          if k not in ("z_dim", "c_dim", "w_dim", "num_ws")}
    if "mapping_kwargs" not in kwargs and mapping_stub is not None:
        n = sum(1 for k in tensors if re.fullmatch(r"mapping\.fc\d+\.weight", k))
        if n:
            mapping_kwargs.setdefault("num_layers", n)

    family = "stylegan3" if any(k.startswith("synthesis.input.") for k in tensors) else "stylegan2"
    for k, v in recorded_precision(synthesis_stub, family, int(kwargs["img_resolution"])).items():
        synthesis_kwargs.setdefault(k, v)  # explicit init kwargs first; the pickled layers fill the gaps
    if family == "stylegan2":
        res = int(kwargs["img_resolution"])
        if res > 4 and f"synthesis.b{res // 2}.torgb.weight" in tensors:
            synthesis_kwargs["architecture"] = "skip"
        elif any(k.endswith(".skip.weight") for k in tensors):
            synthesis_kwargs["architecture"] = "resnet"
        elif res > 4:
            synthesis_kwargs["architecture"] = "orig"
    return {"family": family, **{n: int(kwargs[n]) for n in _BASE_ARGS},
            "mapping_kwargs": mapping_kwargs, "synthesis_kwargs": synthesis_kwargs}


def recorded_precision(synthesis: safe_pickle.PersistentStub | None, family: str,
                       img_resolution: int) -> dict[str, Any]:
    """conv_clamp and num_fp16_res as the pickled synthesis network actually used them.

    NVIDIA's two code bases default these differently: stylegan2-ada-pytorch has no clamp and no float16
    layers unless its training script asks, while the stylegan3 repository (its StyleGAN2 and StyleGAN3)
    clamps at 256 and runs the 4 highest resolutions in float16 by default. A training run that kept the
    defaults records neither value in its init kwargs, so the values are read from the pickled layers
    themselves (each keeps `conv_clamp`; StyleGAN2 blocks keep `use_fp16`), never assumed."""
    found: dict[str, Any] = {}
    if synthesis is None:
        return found
    if "num_fp16_res" in synthesis.state:
        found["num_fp16_res"] = int(synthesis.state["num_fp16_res"])
    if family == "stylegan3":
        names = list(synthesis.state.get("layer_names") or [])
        layer = synthesis.child(names[0]) if names else None
    else:
        blocks = {int(name[1:]): synthesis.child(name) for name in (synthesis.state.get("_modules") or {})
                  if re.fullmatch(r"b\d+", name)}
        b4 = blocks.get(4)
        layer = b4.child("conv1") if b4 is not None else None
        flags = {res: block.state.get("use_fp16") for res, block in blocks.items() if block is not None}
        fp16 = [res for res, on in flags.items() if on]
        if "num_fp16_res" not in found and fp16:  # none in float16 is also what a missing value means
            # Blocks at or above 2 ** (log2(resolution) + 1 - num_fp16_res) run in float16.
            found["num_fp16_res"] = int(math.log2(img_resolution)) + 1 - int(math.log2(min(fp16)))
    if layer is not None and "conv_clamp" in layer.state:
        clamp = layer.state["conv_clamp"]
        if clamp is not None:
            clamp = int(clamp) if float(clamp).is_integer() else float(clamp)
        found["conv_clamp"] = clamp
    return found


def load_nvidia_pickle(path: str | Path) -> LoadedGenerator:
    path = Path(path)
    data = safe_pickle.load(path)
    stub, key = _network_stub(data, path)
    tensors = safe_pickle.state_dict(stub)
    config = check_generator_config(nvidia_config(stub, tensors), path.name)
    try:
        G = Generator.from_config(config)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelLoadError(f"{path.name}: unsupported generator settings ({exc})") from None
    _load_strict(G, tensors, path.name)
    info = {"class_name": stub.class_name, "network": key, "init_kwargs": _jsonable(stub.init_kwargs)}
    return LoadedGenerator(G, "nvidia-pickle", str(path), info)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return value.item()
        return repr(value)


# ----------------------------------------------------------------------------------------- rosinality


def _torch_load_safe(path: Path) -> Any:
    # The archive's members (or a legacy file's storages) are checked against the file first.
    if torch_files.check_archive(path) is None:
        torch_files.check_legacy_storages(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"File not found: {path}") from None
    except _TORCH_LOAD_ERRORS as exc:
        text = first_line(exc, limit=10_000)
        if "Unsupported global" in str(exc) or "weights_only" in str(exc):
            raise ModelLoadError(f"{path.name} was refused: it needs Python objects beyond tensors "
                                 f"({text[:160]}); only tensors are loaded from .pt files") from None
        raise ModelLoadError(f"{path.name} is truncated or corrupted ({text[:160]}); download it again") from None


def rosinality_state(data: Any, path: Path) -> tuple[dict[str, torch.Tensor], Any, torch.Tensor | None]:
    """(generator state dict, args or None, latent_avg or None) of a rosinality checkpoint."""
    if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("style.") for k in data):
        return data, None, None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} does not hold a rosinality checkpoint")
    for key in ("g_ema", "g"):
        if isinstance(data.get(key), dict):
            return data[key], data.get("args"), data.get("latent_avg")
    raise ModelLoadError(f"{path.name} holds no generator (g_ema); it has: {', '.join(map(str, list(data)[:6]))}")


def _channels_to_base(channels: dict[int, int]) -> tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // res, channel_max) == channels[res] for all res."""
    channel_max = max(channels.values())
    below = [res for res in sorted(channels) if channels[res] < channel_max]
    channel_base = channels[below[0]] * below[0] if below else channel_max * max(channels)
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        raise ModelLoadError(f"unsupported channel layout {channels} (not of the form min(base / res, max))")
    return channel_base, channel_max


def convert_rosinality(sd: dict[str, torch.Tensor], args: Any = None,
                       latent_avg: torch.Tensor | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """rosinality/stylegan2-pytorch generator -> (our config, NVIDIA-named state dict).

    rosinality scales conv weights by 1/sqrt(fan_in) before demodulating and NVIDIA does not: the weights
    are rescaled once here so that both compute the same image (demodulation epsilon included)."""
    n_mlp = sum(1 for k in sd if re.fullmatch(r"style\.\d+\.weight", k))
    if n_mlp == 0 or "input.input" not in sd or "conv1.conv.weight" not in sd:
        raise ModelLoadError("not a rosinality StyleGAN2 generator (style.*, input.input and conv1 expected)")
    style_dim = sd["style.1.weight"].shape[1]
    n_rgbs = sum(1 for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    size = 4 * 2 ** n_rgbs
    if args is not None and getattr(args, "size", None) and int(args.size) != size:
        raise ModelLoadError(f"checkpoint args say size {args.size} but the weights have {size}")
    channels = {4: sd["input.input"].shape[1]}
    for k in range(n_rgbs):
        channels[8 * 2 ** k] = sd[f"convs.{2 * k}.conv.weight"].shape[1]
    channel_base, channel_max = _channels_to_base(channels)
    lr_mlp = float(getattr(args, "lr_mlp", 0.01) or 0.01) if args is not None else 0.01
    img_channels = sd["to_rgb1.conv.weight"].shape[1]

    out: dict[str, torch.Tensor] = {}
    for i in range(1, n_mlp + 1):
        out[f"mapping.fc{i - 1}.weight"] = sd[f"style.{i}.weight"]
        out[f"mapping.fc{i - 1}.bias"] = sd[f"style.{i}.bias"]
    blur = sd.get("convs.0.conv.blur.kernel")
    resample = (blur / blur.sum()) if blur is not None else None

    def conv(src: str, dst: str, noise: str | None) -> None:
        weight = sd[f"{src}.conv.weight"][0]
        fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
        out[f"{dst}.weight"] = weight * (1 / math.sqrt(fan_in))
        out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
        out[f"{dst}.noise_strength"] = sd[f"{src}.noise.weight"].reshape([])
        if noise is not None and noise in sd:
            out[f"{dst}.noise_const"] = sd[noise][0, 0]

    def torgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(-1)

    out["synthesis.b4.const"] = sd["input.input"][0]
    conv("conv1", "synthesis.b4.conv1", "noises.noise_0")
    torgb("to_rgb1", "synthesis.b4.torgb")
    for k in range(n_rgbs):
        res = 8 * 2 ** k
        conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0", f"noises.noise_{2 * k + 1}")
        conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", f"noises.noise_{2 * k + 2}")
        torgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
    config = {"family": "stylegan2", "z_dim": style_dim, "c_dim": 0, "w_dim": style_dim, "img_resolution": size,
              "img_channels": img_channels,
              "mapping_kwargs": {"num_layers": n_mlp, "lr_multiplier": lr_mlp},
              "synthesis_kwargs": {"channel_base": channel_base, "channel_max": channel_max, "architecture": "skip"}}
    G = Generator.from_config(config)
    own = G.state_dict()
    for name, value in own.items():
        if name.endswith("resample_filter") and resample is not None:
            out[name] = resample.clone()
        elif name not in out and (name.endswith("resample_filter") or name.endswith("noise_const")):
            out[name] = value  # a checkpoint without stored noise keeps freshly drawn constants
    if latent_avg is not None:
        out["mapping.w_avg"] = latent_avg.reshape(-1)
    return config, out


def load_rosinality(path: str | Path) -> LoadedGenerator:
    path = Path(path)
    data = _torch_load_safe(path)
    sd, args, latent_avg = rosinality_state(data, path)
    config, tensors = convert_rosinality(sd, args, latent_avg)
    G = Generator.from_config(config)
    estimated = "mapping.w_avg" not in tensors
    if estimated:
        tensors["mapping.w_avg"] = torch.zeros([config["w_dim"]])
    _load_strict(G, tensors, path.name)
    if estimated:
        G.mapping.w_avg.copy_(estimate_w_avg(G))
    info = {"args": _jsonable(vars(args)) if isinstance(args, argparse.Namespace) else None,
            "w_avg": "estimated from 10000 samples" if estimated else "latent_avg"}
    return LoadedGenerator(G, "rosinality", str(path), info)


@torch.no_grad()
def estimate_w_avg(G: Generator, samples: int = 10000, seed: int = 0) -> torch.Tensor:
    """Mean w over random z (what training tracks as w_avg), for checkpoints that do not store it."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([samples, G.z_dim], generator=gen)
    c = None
    if G.c_dim:
        c = torch.nn.functional.one_hot(torch.randint(G.c_dim, [samples], generator=gen), G.c_dim).float()
    return G.mapping(z, c)[:, 0].mean(dim=0)


# ----------------------------------------------------------------------------------------- our format


def save_ours(G: Generator, out_dir: str | Path, source: dict[str, Any] | None = None) -> Path:
    """Write `out_dir/stylegan.json` + `out_dir/generator.safetensors`; returns the folder."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ModelLoadError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    config = G.to_config()
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() if v.is_floating_point() else v.detach().cpu()
               for k, v in G.state_dict().items()}
    document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "generator": config,
                "weights": WEIGHTS_FILE, "source": source or {}}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(config), "format": FORMAT_NAME})
    atomic_write(out / CONFIG_FILE, json.dumps(document, indent=2, sort_keys=True))
    return out


def load_ours(path: str | Path) -> LoadedGenerator:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    document: dict[str, Any] = {}
    if path.is_dir() or path.name == CONFIG_FILE:
        label = f"{folder.name}/{CONFIG_FILE}"
        try:
            document = load_json_file(folder / CONFIG_FILE, label, max_bytes=4 * MiB)
        except (OSError, UserError) as exc:
            raise ModelLoadError(f"{label} is unreadable: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
            raise ModelLoadError(f"{label} is not an {FORMAT_NAME} config")
        version, weights_name = document.get("format_version", 0), document.get("weights", WEIGHTS_FILE)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ModelLoadError(f"{label}: format_version must be a whole number, got {type(version).__name__}")
        if version > FORMAT_VERSION:
            raise ModelLoadError(f"{folder.name} was written by a newer version of this app")
        if not isinstance(weights_name, str) or not weights_name or len(weights_name) > 255 or \
                Path(weights_name).name != weights_name:
            raise ModelLoadError(f"{label}: weights must be a file name in the folder, got {str(weights_name)[:40]!r}")
        weights = folder / weights_name
        config = document.get("generator")
    else:
        weights = path
        config = None
    try:
        header = read_header(weights)  # regular file, bounded and schema-checked
    except OSError as exc:
        raise ModelLoadError(f"Cannot read {weights}: {exc}") from None
    if config is None:
        if METADATA_KEY not in header.metadata:
            raise ModelLoadError(f"{weights.name} has StyleGAN weights but no config "
                                 f"(keep it next to its {CONFIG_FILE})")
        try:
            config = loads_json(header.metadata[METADATA_KEY], what=f"the StyleGAN config in {weights.name}")
        except UserError as exc:
            raise ModelLoadError(f"{weights.name}: its config is unreadable ({exc})") from None
    check_generator_config(config, weights.name)
    try:
        G = Generator.from_config(config)
        tensors = load_file(str(weights))
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, MemoryError) as exc:
        raise ModelLoadError(f"{weights.name}: unsupported generator settings ({first_line(exc)})") from None
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{weights.name} is truncated or corrupted ({exc})") from None
    _load_strict(G, tensors, weights.name)
    return LoadedGenerator(G, "aigc", str(path), {"source": document.get("source", {})})


def convert(src: str | Path, out_dir: str | Path) -> Path:
    """Load any supported checkpoint and write it in our format; returns the output folder."""
    from aigc_desktop.core.hashing import sha256_file

    loaded = load_generator(src)
    source = {"format": loaded.format, "file": Path(src).name, "sha256": sha256_file(src), **loaded.info}
    return save_ours(loaded.G, out_dir, _jsonable(source))
