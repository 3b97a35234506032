"""Single-file Stable Diffusion checkpoints (original CompVis / Stability layout) and standalone VAEs,
loaded offline into diffusers pipelines.

- `.safetensors` are read tensor by tensor through `safetensors.safe_open` (memory-mapped), each tensor
  cast to the target dtype as it is read, and the tensors become the model's parameters as they are
  (models are built on the meta device and filled with `load_state_dict(assign=True)`): the checkpoint
  is held in memory once.
- `.ckpt` / `.pt` / `.pth` / `.bin` are pickles: they are opened only with torch's weights-only unpickler,
  which builds tensors and plain containers and refuses everything else. Numpy scalars are allowed, and the
  classes of training frameworks (a Lightning callback in the checkpoint's extra entries) are replaced by
  inert stand-ins; any other global is refused by name, never imported or called.
- The family comes from the keys (core.detect), the sizes from the tensor shapes (ldm.py), the
  conventions from resources/configs (families.py). Nothing here reaches the network.
"""

from __future__ import annotations

import logging
import pickle
import re
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from aigc_desktop.core import torch_files
from aigc_desktop.core.detect import identify_keys
from aigc_desktop.core.errors import ModelLoadError, first_line
from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.core.safe_io import MiB, read_bytes, regular_file
from aigc_desktop.core.safetensors_header import read_header
from aigc_desktop.engines.diffusion import ldm
from aigc_desktop.engines.diffusion.families import FamilyConfig, check_prediction_type, family_config
from aigc_desktop.engines.diffusion.loaded import LoadedModel

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


# ----------------------------------------------------------------------------------------------- reading


class StateFile:
    """The tensors of a checkpoint by name, with their shapes known before any tensor is read."""

    def __init__(self, path: Path, shapes: dict[str, tuple[int, ...]], float_keys: set[str],
                 metadata: dict[str, str], global_step: int | None,
                 read: Callable[[str], torch.Tensor], close: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self.shapes = shapes
        self.float_keys = float_keys
        self.metadata = metadata
        self.global_step = global_step
        self._read = read
        self._close = close

    def tensors(self, keys: list[str], dtype: torch.dtype, strip: str = "") -> dict[str, torch.Tensor]:
        """The float tensors among `keys`, cast to `dtype` one at a time, named without `strip`."""
        out = {}
        for key in keys:
            if key not in self.float_keys:
                continue
            try:
                out[key[len(strip):] if key.startswith(strip) else key] = self._read(key).to(dtype)
            except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways; one line for the user
                raise ModelLoadError(f"{self.path.name} is damaged: tensor {key} could not be read "
                                     f"({first_line(exc)})") from None
        return out

    def keys_under(self, prefix: str) -> list[str]:
        return [k for k in self.shapes if k.startswith(prefix) and ldm.is_weight(k)]

    def __enter__(self) -> "StateFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close()


def open_state(path: Path) -> StateFile:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _open_safetensors(path)
    if suffix in PICKLE_SUFFIXES:
        return _open_pickle(path)
    raise ModelLoadError(f"{path.name}: unsupported file type '{suffix}' (use .safetensors, .ckpt or .pt)")


def _open_safetensors(path: Path) -> StateFile:
    from safetensors import safe_open

    header = read_header(path)  # regular file, bounded, schema-checked, every tensor inside the file
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ModelLoadError(f"{path.name} is not a readable safetensors file ({first_line(exc)})") from None
    return StateFile(path, header.shapes(), header.float_keys(), dict(header.metadata), None, handle.get_tensor,
                     lambda: handle.__exit__(None, None, None))


def _open_pickle(path: Path) -> StateFile:
    obj = safe_torch_load(path)
    state: Any = obj
    global_step = None
    # Lightning checkpoints: {"state_dict": {...}, "global_step": N, ...}; some nest it twice.
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        step = state.get("global_step")
        global_step = int(step) if isinstance(step, int) else global_step
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path.name} holds a {type(state).__name__}, not a dictionary of tensors")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    floats = {k for k, v in tensors.items() if v.is_floating_point()}
    return StateFile(path, shapes, floats, {}, global_step, tensors.__getitem__)


# ----------------------------------------------------------------------------------------------- safe pickles

_INERT_MODULES = ("pytorch_lightning.", "lightning.", "lightning_fabric.")


class _Inert:
    """Stands in for a training-framework object found in a checkpoint: keeps its state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


_inert_classes: dict[str, type] = {}


def _inert_class(full_name: str) -> type:
    if full_name not in _inert_classes:
        module, _, name = full_name.rpartition(".")
        _inert_classes[full_name] = type(name, (_Inert,), {"__module__": module, "__qualname__": name})
    return _inert_classes[full_name]


def _numpy_globals() -> list[tuple[Any, str]]:
    """Numpy scalars, dtypes and arrays (checkpoints store metrics such as a best score this way); both
    spellings of numpy's core module, as files written under numpy 1 and 2 name them."""
    import numpy as np

    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed: list[tuple[Any, str]] = [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(core.scalar, f"{module}.scalar"), (core._reconstruct, f"{module}._reconstruct")]
    for name in dir(getattr(np, "dtypes", None)):
        if name.endswith("DType"):
            allowed.append((getattr(np.dtypes, name), f"numpy.dtypes.{name}"))
    return allowed


def safe_torch_load(path: Path) -> Any:
    """torch.load with the weights-only unpickler (never plain pickle): tensors, containers, numpy scalars
    and inert stand-ins for training-framework classes. Anything else is refused with its name."""
    allowed = _numpy_globals()
    known = {name for _obj, name in allowed}
    # A regular file; a zip's members checked against the file size and limits before torch reads any.
    is_zip = torch_files.check_archive(path) is not None
    if not is_zip:
        torch_files.check_legacy_storages(path)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if is_zip else _pickle_globals(path)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path.name} is not a readable PyTorch checkpoint ({first_line(exc)})") from None
    refused = []
    for name in names:
        if name.startswith(_INERT_MODULES):
            allowed.append((_inert_class(name), name))
        elif name not in known:
            refused.append(name)
    if refused:
        raise ModelLoadError(refused_message(path, refused))
    try:
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "pickle protocol 4 ..." notes from the weights-only unpickler
            try:
                return torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
            except RuntimeError as exc:  # zips written by old torch versions may not map: read them instead
                if not is_zip or "mmap" not in str(exc):
                    raise
                return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        names = re.findall(r"GLOBAL ([\w.]+)", str(exc))
        if names:
            raise ModelLoadError(refused_message(path, names)) from None
        raise ModelLoadError(f"{path.name} was refused: {_weights_only_reason(exc)}") from None
    except MemoryError:
        raise ModelLoadError(f"{path.name} asks for more memory than this machine has: damaged or forged "
                             "(use a .safetensors copy from a trusted source)") from None
    except Exception as exc:  # noqa: BLE001 - truncated data, bad opcode, ...
        raise ModelLoadError(f"{path.name} is damaged or not a PyTorch checkpoint ({first_line(exc)}); "
                             "download it again or use a .safetensors copy") from None


def _pickle_globals(path: Path) -> list[str]:
    """The globals a bare pickle names (GLOBAL, and STACK_GLOBAL with the two strings pushed before it),
    read with pickletools, which never executes anything."""
    import pickletools

    names: list[str] = []
    recent: list[str] = []
    p = regular_file(path, "model file")
    with open(p, "rb") as fh:
        for op, arg, _pos in pickletools.genops(torch_files.BoundedReader(fh, p.stat().st_size)):
            if op.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(recent) >= 2:
                names.append(f"{recent[-2]}.{recent[-1]}")
            elif isinstance(arg, str) and "UNICODE" in op.name:
                recent = (recent + [arg])[-2:]
    # torch's own rebuild functions are what the weights-only unpickler allows anyway.
    return [n for n in names if not n.startswith(("torch.", "collections.OrderedDict", "builtins.set",
                                                  "builtins.frozenset", "_codecs.encode"))]


def refused_message(path: Path, names: list[str]) -> str:
    shown = ", ".join(sorted(set(names))[:3])
    return (f"{path.name} was refused: its pickle names {shown}, which could run code; only tensors and plain "
            "containers are loaded from .ckpt/.pt files (use a .safetensors copy from a trusted source)")


def _weights_only_reason(exc: BaseException) -> str:
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    return first_line(text.strip())


# ----------------------------------------------------------------------------------------------- building


def _build(path: Path, what: str, make: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor]):
    """Build a module on the meta device and give it `state`'s tensors as its parameters (no copy)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = make()
    expected = model.state_dict()
    missing = [k for k in expected if k not in state or state[k] is None]
    if missing:
        raise ModelLoadError(f"{path.name}: the {what} lacks {len(missing)} of its {len(expected)} weights "
                             f"(e.g. {missing[0]}); the file is incomplete or in an unknown layout")
    for key, param in expected.items():
        if tuple(state[key].shape) != tuple(param.shape):
            raise ModelLoadError(f"{path.name}: the {what} weight {key} has shape {tuple(state[key].shape)} where "
                                 f"the architecture read from the file needs {tuple(param.shape)}; the file is damaged "
                                 "or mixes parts of different models (choose the family by hand if it is wrong)")
    extra = [k for k in state if k not in expected]
    if extra:
        log.warning("%s: %d %s tensors not used (e.g. %s)", path.name, len(extra), what, extra[0])
    model.load_state_dict({k: state[k] for k in expected}, strict=True, assign=True)
    return model.eval()


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if v is not None}


def _text_encoder(sf: StateFile, fam: FamilyConfig, slot: str, dtype: torch.dtype):
    import transformers

    candidates = [ldm.TEXT_ENCODERS[fam.family][slot]]
    if fam.family in ("sd1", "sd2"):  # a hand-chosen family may meet the other layout
        candidates += [v["text_encoder"] for f, v in ldm.TEXT_ENCODERS.items() if f in ("sd1", "sd2")]
    prefix, layout = next(((p, lay) for p, lay in candidates if sf.keys_under(p)), candidates[0])
    raw = sf.tensors(sf.keys_under(prefix), dtype, strip=prefix)
    if not raw:
        raise ModelLoadError(f"{sf.path.name} has no text encoder weights ({prefix}*), which a {fam.family} "
                             "model needs")
    if layout == "hf":
        state = ldm.clip_to_diffusers(raw)
    else:
        state = ldm.open_clip_to_diffusers(raw, drop_last_layer=prefix.startswith("cond_stage_model."))
    cls = getattr(transformers, fam.component_class(slot))
    try:
        config = transformers.CLIPTextConfig(**ldm.text_config(_shapes(state), fam.json(f"{slot}/config.json")))
    except ModelLoadError as exc:
        raise ModelLoadError(f"{sf.path.name}: {exc}") from None
    if cls is transformers.CLIPTextModel:
        state.pop("text_projection.weight", None)
    else:  # CLIPTextModelWithProjection keeps the `text_model.` level
        state = {(k if k == "text_projection.weight" else "text_model." + k): v for k, v in state.items()}
    return _build(sf.path, "text encoder" if slot == "text_encoder" else "second text encoder",
                  lambda: cls(config), state)


def _unet(sf: StateFile, fam: FamilyConfig, dtype: torch.dtype, pooled_dim: int | None):
    from diffusers import UNet2DConditionModel

    raw = sf.tensors(sf.keys_under(ldm.UNET_PREFIX), dtype, strip=ldm.UNET_PREFIX)
    try:
        state = {k: v for k, v in ldm.unet_to_diffusers(raw).items() if v is not None}
    except (KeyError, IndexError, ValueError) as exc:
        raise ModelLoadError(f"{sf.path.name}: the UNet is in an unknown layout ({first_line(exc)})") from None
    del raw
    try:
        config = ldm.unet_config(_shapes(state), fam.json("unet/config.json"), pooled_dim)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{sf.path.name}: {exc}") from None
    except (KeyError, IndexError) as exc:
        raise ModelLoadError(f"{sf.path.name}: the UNet lacks {first_line(exc)}") from None
    if config["in_channels"] not in (4, 9):
        raise ModelLoadError(f"{sf.path.name}: a UNet with {config['in_channels']} input channels (such as "
                             "instruct-pix2pix or depth models) is not supported; 4 (normal) or 9 (inpainting) are")
    return _build(sf.path, "UNet", lambda: UNet2DConditionModel.from_config(config), state)


def _vae_from(sf: StateFile, family: str, dtype: torch.dtype):
    prefix = next((p for p in ldm.VAE_PREFIXES if sf.keys_under(p + "decoder.")), "")
    keys = [k for k in sf.keys_under(prefix)
            if k[len(prefix):].startswith(("encoder.", "decoder.", "quant_conv.", "post_quant_conv."))]
    if not any(k[len(prefix):].startswith("decoder.") for k in keys):
        raise ModelLoadError(f"{sf.path.name} has no VAE weights; choose a VAE file for it (--vae, or the VAE "
                             "setting)")
    from diffusers import AutoencoderKL

    try:
        state = ldm.vae_to_diffusers(sf.tensors(keys, dtype, strip=prefix))
        config = ldm.vae_config(_shapes(state), family_config(family).json("vae/config.json"))
    except ModelLoadError as exc:
        raise ModelLoadError(f"{sf.path.name}: {exc}") from None
    except (KeyError, IndexError) as exc:
        raise ModelLoadError(f"{sf.path.name}: the VAE lacks {first_line(exc)}") from None
    return _build(sf.path, "VAE", lambda: AutoencoderKL.from_config(config), state)


def load_vae(path: Path, family: str, dtype: torch.dtype):
    """A standalone VAE (.safetensors or a safe pickle; original or diffusers layout; or the VAE of a
    full checkpoint), with the scaling factor of `family`."""
    path = Path(path).expanduser()
    if not path.exists() and not path.is_symlink():
        raise ModelLoadError(f"VAE file not found: {path}")
    regular_file(path, "VAE file")
    with open_state(path) as sf:
        ident = identify_keys(sf.shapes.keys(), sf.shapes)
        if ident.kind not in ("vae", "checkpoint"):
            raise ModelLoadError(f"{path.name} is not a VAE (found {_found(ident)})")
        return _vae_from(sf, family, dtype)


# ----------------------------------------------------------------------------------------------- checkpoints


def load_checkpoint(ref: ModelRef, path: Path, dtype: torch.dtype) -> LoadedModel:
    with open_state(path) as sf:
        return build_checkpoint(ref, sf, dtype)


def build_checkpoint(ref: ModelRef, sf: StateFile, dtype: torch.dtype) -> LoadedModel:
    """The model in an opened checkpoint: family from its keys (or `ref.family`), sizes from its shapes."""
    start = time.perf_counter()
    name = sf.path.name
    ident = identify_keys(sf.shapes.keys(), sf.shapes)
    if ident.kind != "checkpoint":
        raise ModelLoadError(f"{name} is not a Stable Diffusion checkpoint (found {_found(ident)})")
    family = ref.family or ident.family
    if not family:
        raise ModelLoadError(f"{name}: {ident.note}")
    if ident.variant == "refiner" and family == "sdxl":
        raise ModelLoadError(f"{name} is an SDXL refiner (OpenCLIP bigG only), which is not supported as a model "
                             "on its own")
    embedding = ldm.UNET_PREFIX + "label_emb.0.0.weight" in sf.shapes  # SDXL's text-time embedding
    if embedding and family != "sdxl":
        raise ModelLoadError(f"{name}: the UNet has an extra embedding that {family} models lack (unCLIP and "
                             "upscaler models are not supported)")
    if family == "sdxl" and not embedding:
        raise ModelLoadError(f"{name}: the UNet lacks SDXL's text-time embedding; it is not an SDXL model")
    prediction, why = resolve_prediction_type(ref, sf, family, ident.variant)
    fam = family_config(family, prediction)
    encoders = {slot: _text_encoder(sf, fam, slot, dtype) for slot in fam.text_encoder_slots}
    pooled = encoders["text_encoder_2"].config.projection_dim if "text_encoder_2" in encoders else None
    unet = _unet(sf, fam, dtype, pooled)
    _check_widths(sf.path, unet, encoders)
    vae = load_vae(Path(ref.vae), family, dtype) if ref.vae else _vae_from(sf, family, dtype)
    scheduler = fam.scheduler(prediction, **({"rescale_betas_zero_snr": True} if "ztsnr" in sf.shapes else {}))
    pipe = assemble(fam, unet, vae, encoders, scheduler, sf.path)
    log.info("Loaded %s as %s%s (%s: %s) in %.1f s", name, family, f" {ident.variant}" if ident.variant else "",
             prediction, why, time.perf_counter() - start)
    return LoadedModel(ref=ref, pipe=pipe, family=family, variant=ident.variant, device=torch.device("cpu"),
                       dtype=dtype, scheduler_config=dict(scheduler.config))


def assemble(fam: FamilyConfig, unet, vae, encoders: dict[str, Any], scheduler, path: Path):
    """The family's text-to-image pipeline from built components (tokenizers from resources/)."""
    if vae.config.latent_channels != unet.config.out_channels:
        raise ModelLoadError(f"{path.name}: the VAE has {vae.config.latent_channels} latent channels where the "
                             f"UNet makes {unet.config.out_channels}")
    kwargs: dict[str, Any] = {"unet": unet, "vae": vae, "scheduler": scheduler}
    for slot, encoder in encoders.items():
        kwargs[slot] = encoder
        kwargs[slot.replace("text_encoder", "tokenizer")] = fam.tokenizer(slot.replace("text_encoder", "tokenizer"))
    if fam.family == "sdxl":
        kwargs.update(force_zeros_for_empty_prompt=fam.model_index.get("force_zeros_for_empty_prompt", True),
                      add_watermarker=False)
    else:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return fam.pipeline_class()(**kwargs)


def _check_widths(path: Path, unet, encoders: dict[str, Any]) -> None:
    width = sum(e.config.hidden_size for e in encoders.values())
    cross = unet.config.cross_attention_dim
    if width != cross:
        raise ModelLoadError(f"{path.name}: the text encoder output is {width} wide but the UNet's cross-attention "
                             f"expects {cross}; the file mixes parts of different models or the family is wrong")


def resolve_prediction_type(ref: ModelRef, sf: StateFile, family: str, variant: str | None) -> tuple[str, str]:
    """(prediction type, why). The user's choice wins; then an A1111 sidecar .yaml, a `v_pred` marker key,
    the file's metadata; for SD 2.x diffusers' rule (v-prediction, except the 512 base: global step
    875,000), a 512-named file and inpainting (both epsilon)."""
    if ref.prediction_type:
        return check_prediction_type(ref.prediction_type), "chosen by the user"
    sidecar = _sidecar_parameterization(sf.path)
    if sidecar:
        return sidecar, f"{sf.path.with_suffix('.yaml').name}"
    if "v_pred" in sf.shapes:
        return "v_prediction", "the file's v_pred marker"
    meta = {k: v.lower() for k, v in sf.metadata.items()}
    spec = meta.get("modelspec.prediction_type", "")
    if spec:
        return ("v_prediction" if spec.startswith("v") else "epsilon"), "the file's modelspec metadata"
    if meta.get("ss_v_parameterization") == "true":
        return "v_prediction", "the file's training metadata"
    if meta.get("modelspec.architecture"):  # e.g. stable-diffusion-v2-768-v, stable-diffusion-v2-512
        v = meta["modelspec.architecture"].endswith("-v")
        return ("v_prediction" if v else "epsilon"), "the file's modelspec architecture"
    if family != "sd2":
        return "epsilon", f"{family} default"
    if variant == "inpaint":
        return "epsilon", "SD 2.x inpainting"
    if sf.global_step == 875000:
        return "epsilon", "SD 2.x 512 base (global step 875000)"
    stem = sf.path.stem.lower()
    if (re.search(r"(?<!\d)512(?!\d)", stem) or re.search(r"(?<![a-z])base(?![a-z])", stem)) and "768" not in stem:
        return "epsilon", "SD 2.x 512 base (by its name)"
    return "v_prediction", "SD 2.x default (768-v); set the prediction type if images come out wrong"


def _sidecar_parameterization(path: Path) -> str | None:
    """A1111's convention: `model.yaml` beside `model.safetensors`, its `parameterization: "v"` meaning
    v-prediction (absent: epsilon)."""
    yaml_path = path.with_suffix(".yaml")
    if not yaml_path.is_file():
        return None
    try:
        import yaml

        # A sidecar is a few KiB; a huge or deeply nested one is ignored like any broken one.
        data = yaml.safe_load(read_bytes(yaml_path, 1 * MiB, "sidecar").decode("utf-8"))
        params = data["model"]["params"]
        if not isinstance(params, dict):
            raise TypeError("model.params is not a mapping")
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - a broken sidecar is ignored, not fatal
        log.warning("Ignoring %s: %s", yaml_path.name, first_line(exc))
        return None
    return "v_prediction" if str(params.get("parameterization", "eps")).lower() == "v" else "epsilon"


def _found(ident) -> str:
    return f"{ident.label}: {ident.note}" if ident.note else ident.label
