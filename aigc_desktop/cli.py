"""Command-line interface on the same core as the app.

    aigc-desktop                      launch the app
    aigc-desktop generate --model PATH --prompt TEXT --out FILE_OR_DIR [...]
    aigc-desktop models [--json]
    aigc-desktop info IMAGE.png [--json]

Bad input gives one line on stderr and a non-zero exit code (2), never a traceback. A job that fails, or an
image that cannot be saved where asked (it is kept in the temp folder; the line says where), exits with 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import aigc_desktop  # noqa: F401 - offline flags before anything else
from aigc_desktop import __version__, cli_info, cli_project
from aigc_desktop.core import catalog
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.params import SCHEDULERS
from aigc_desktop.core.safe_io import regular_file
from aigc_desktop import cli_interpolate
from aigc_desktop import cli_stylegan as stylegan_cli
from aigc_desktop.cli_common import (EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError,  # noqa: F401
                                     echo as _echo, failure_code, load_settings as _settings, number as _float,
                                     resolve_model, run_job, whole_number as _positive_int)
from aigc_desktop.training import commands as training_commands


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too; keep it short)
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aigc-desktop", description="Offline image generation studio.")
    parser.add_argument("--version", action="version", version=f"aigc-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser("app", help="launch the desktop app (the default)")

    g = sub.add_parser("generate", help="generate images with a model")
    g.add_argument("--model", required=True, help="model file or folder (or the name of a discovered model)")
    g.add_argument("--prompt", default="", help="prompt text")
    g.add_argument("--negative", default="", help="negative prompt")
    g.add_argument("--seed", type=_positive_int, default=-1, help="seed (-1: random)")
    g.add_argument("--steps", type=_positive_int, default=20)
    g.add_argument("--cfg", type=_float, default=7.0, help="classifier-free guidance scale")
    g.add_argument("--width", type=_positive_int, default=None)
    g.add_argument("--height", type=_positive_int, default=None)
    g.add_argument("--scheduler", default="euler_a", help=f"one of: {', '.join(SCHEDULERS)}")
    g.add_argument("--batch", type=_positive_int, default=1, help="images per batch")
    g.add_argument("--batch-count", type=_positive_int, default=1, help="number of batches")
    g.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    g.add_argument("--dtype", default="auto", help="auto | fp16 | bf16 | fp32")
    g.add_argument("--out", required=True, help="output PNG file or folder")
    g.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _add_mode_args(g)
    for extend in GENERATE_EXTENSIONS:
        extend(g)

    m = sub.add_parser("models", help="list discovered models")
    m.add_argument("--json", action="store_true")
    m.add_argument("--folder", action="append", default=[], help="scan this folder too (repeatable)")
    cli_info.add_parser(sub)  # info FILE [--json] [--hash]
    cli_project.add_parser(sub)  # export PROJECT.aigc
    stylegan_cli.add_parsers(sub)  # convert, grid
    cli_interpolate.add_parsers(sub)  # interpolate, walk (its StyleGAN alias)

    training_commands.add_parsers(sub)  # dataset, train
    return parser


# Other modules (engines' CLI parts) add their arguments / commands here; keeps this file the one front.
GENERATE_EXTENSIONS: list[Callable[[argparse.ArgumentParser], None]] = []
JOB_BUILDERS: dict[str, Callable[[argparse.Namespace, catalog.ModelInfo], Any]] = {}


def diffusion_job(args: argparse.Namespace, info: catalog.ModelInfo):
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams

    default_size = info.default_size
    modes = _mode_fields(args)
    width, height = _default_size(args, modes, default_size)
    params = GenerationParams(
        prompt=args.prompt, negative_prompt=args.negative, seed=args.seed, steps=args.steps, cfg_scale=args.cfg,
        width=width, height=height, scheduler=args.scheduler, **modes,
        batch_size=args.batch, batch_count=args.batch_count,
        loras=tuple(getattr(args, "lora", None) or ()), extra=_embedding_extra(args),
    ).with_seed_resolved()
    vae = getattr(args, "vae", None)
    if vae:
        _user_file(vae, "VAE file")
    ref = ModelRef(info.path, kind=info.kind, family=getattr(args, "family", None) or info.family,
                   vae=str(Path(vae).expanduser()) if vae else None,
                   prediction_type=getattr(args, "prediction_type", None))
    return DiffusionJob(model=ref, params=params, device=args.device, dtype=args.dtype)


def _user_file(text: str, what: str) -> Path:
    """A file the user named: missing is "<what> not found"; a FIFO, socket or device is refused unopened."""
    path = Path(text).expanduser()
    if not _exists(path):
        raise CliError(f"{what} not found: {_echo(text, 200)}")
    return regular_file(path, what.lower())


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _model_loading_args(g: argparse.ArgumentParser) -> None:
    g.add_argument("--family", choices=("sd1", "sd2", "sdxl"), default=None,
                   help="model family, when detection fails or is wrong (default: detected)")
    g.add_argument("--vae", metavar="FILE", default=None, help="use this VAE file instead of the model's own")
    g.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default=None,
                   help="what the model predicts (default: detected; SD 2.x 768 models are v_prediction)")


GENERATE_EXTENSIONS.append(_model_loading_args)


def _add_mode_args(g: argparse.ArgumentParser) -> None:
    g.add_argument("--init-image", metavar="FILE", help="start from this image: img2img (inpaint with --mask, "
                                                        "outpaint with --outpaint); default size: the image's")
    g.add_argument("--strength", type=_float, default=None, help="how much the init image changes, 0-1 (0.75)")
    g.add_argument("--mask", metavar="FILE", help="inpainting mask, white = repaint, the init image's size")
    g.add_argument("--mask-blur", type=_positive_int, default=None, help="mask blur radius in pixels (4)")
    g.add_argument("--only-masked", action="store_true",
                   help="inpaint only the masked region, upscaled to --width x --height, then paste it back")
    g.add_argument("--outpaint", type=_margins, metavar="L,T,R,B", help="extend the init image by these pixels")
    g.add_argument("--variation-seed", type=_positive_int, default=None, help="seed of the variation noise (-1: random)")
    g.add_argument("--variation-strength", type=_float, default=None,
                   help="0-1: how far the noise moves towards the variation seed's")


def _margins(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected L,T,R,B as four whole numbers >= 0, got '{text}'")
    return values  # type: ignore[return-value]


def _mode_fields(args: argparse.Namespace) -> dict[str, Any]:
    """GenerationParams fields of the image modes; flags that need another flag fail with one line."""
    needs = [("--strength", args.strength is not None, args.init_image, "--init-image"),
             ("--mask", args.mask, args.init_image, "--init-image"),
             ("--outpaint", args.outpaint, args.init_image, "--init-image"),
             ("--mask-blur", args.mask_blur is not None, args.mask or args.outpaint, "--mask or --outpaint"),
             ("--only-masked", args.only_masked, args.mask or args.outpaint, "--mask or --outpaint"),
             ("--variation-seed", args.variation_seed is not None, args.variation_strength is not None,
              "--variation-strength"),
             ("--variation-strength", args.variation_strength is not None, args.variation_seed is not None,
              "--variation-seed")]
    for flag, given, partner, partner_name in needs:
        if given and not partner:
            raise CliError(f"{flag} needs {partner_name}")
    if args.mask and args.outpaint:
        raise CliError("--mask and --outpaint cannot be combined (outpainting makes its own mask)")
    fields: dict[str, Any] = {}
    if args.init_image:
        fields.update(mode="outpaint" if args.outpaint else "inpaint" if args.mask else "img2img",
                      init_image=args.init_image, mask=args.mask, outpaint=args.outpaint or (0, 0, 0, 0),
                      inpaint_only_masked=args.only_masked)
        for name in ("strength", "mask_blur"):
            if getattr(args, name) is not None:
                fields[name] = getattr(args, name)
    if args.variation_seed is not None:
        fields.update(variation_seed=args.variation_seed, variation_strength=args.variation_strength)
    return fields


def _default_size(args: argparse.Namespace, modes: dict[str, Any], model_size: int) -> tuple[int, int]:
    """--width/--height, else the init image's size (rounded down to a multiple of 8; outpainting: the
    extended canvas), else the model's native size. "Only masked" works at the model's size."""
    width, height = args.width, args.height  # None when not given; 0 is given (and refused by validation)
    if (width is not None and height is not None) or not modes.get("init_image") or modes.get("inpaint_only_masked"):
        return (model_size if width is None else width), (model_size if height is None else height)
    from aigc_desktop.core.params import outpaint_size
    from aigc_desktop.engines.diffusion.images import read_image

    w, h = read_image(modes["init_image"]).size
    if modes["mode"] == "outpaint":
        w, h = outpaint_size(w, h, modes["outpaint"])[:2]
    return (max(64, w - w % 8) if width is None else width), (max(64, h - h % 8) if height is None else height)


def _lora_arg(text: str):
    """FILE:WEIGHT (or FILE, weight 1); FILE is a path or the name of a LoRA in the models folders."""
    from aigc_desktop.core.params import LoraRef

    head, sep, tail = text.rpartition(":")
    if not sep or not head or (len(head) == 1 and tail[:1] in ("\\", "/")):  # no weight, or a drive letter
        head, tail = text, ""
    try:
        weight = float(tail) if tail else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FILE:WEIGHT with a number as weight, got '{text}'") from None
    from aigc_desktop.engines.diffusion.lora import find_lora

    try:
        path = find_lora(head, _settings().model_search_dirs())
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return LoraRef(str(path), weight)


def _prompt_extension_args(g: argparse.ArgumentParser) -> None:
    g.add_argument("--lora", type=_lora_arg, action="append", default=[], metavar="FILE:WEIGHT",
                   help="apply a LoRA with a weight (repeatable); <lora:name:weight> in the prompt works too")
    g.add_argument("--embedding", action="append", default=[], metavar="FILE",
                   help="make a textual-inversion embedding file available; its file name in a prompt triggers it")


def _embedding_extra(args: argparse.Namespace) -> tuple:
    files = getattr(args, "embedding", None) or []
    for f in files:
        _user_file(f, "Embedding file")
    return (("embeddings", tuple(str(Path(f).expanduser()) for f in files)),) if files else ()


GENERATE_EXTENSIONS.append(_prompt_extension_args)
GENERATE_EXTENSIONS.append(cli_project.add_generate_args)  # --project


JOB_BUILDERS["diffusers"] = diffusion_job
JOB_BUILDERS["checkpoint"] = diffusion_job
JOB_BUILDERS["stylegan"] = stylegan_cli.stylegan_job
GENERATE_EXTENSIONS.append(stylegan_cli.add_generate_args)


def cmd_generate(args: argparse.Namespace) -> int:
    from aigc_desktop.core import outputs

    info = resolve_model(args.model)
    builder = JOB_BUILDERS.get(info.kind)
    if builder is None:
        detail = f": {info.note}" if info.note else ""
        raise CliError(f"{Path(info.path).name} is not a model this app can generate with (found {info.label}{detail})")
    spec = builder(args, info)
    spec.validate()
    targets = outputs.cli_targets(args.out, getattr(spec, "image_count", None) or _image_count(spec))

    end = run_job(spec, args.quiet)
    code = failure_code(end)
    if code is not None:
        return code
    if len(targets) != len(end.images):
        targets = outputs.cli_targets(args.out, len(end.images))
    unsaved = 0
    for image, record, target in zip(end.images, end.records, targets):
        try:
            print(outputs.save_image(image, target, record))
        except outputs.SaveError as exc:
            # The image is made: keep it where it can be written, say where, and fail the command.
            unsaved += 1
            try:
                kept = outputs.save_fallback(image, record)
                print(f"error: {exc}; the image was kept at {kept}", file=sys.stderr)
            except outputs.SaveError as again:
                print(f"error: {exc}; keeping it failed too ({again})", file=sys.stderr)
    cli_project.after_generate(args, end.images, end.records)  # --project
    return EXIT_FAILED if unsaved else EXIT_OK


def _image_count(spec: Any) -> int:
    params = getattr(spec, "params", None)
    if params is not None and hasattr(params, "batch_size"):
        return params.batch_size * params.batch_count
    return 1


def cmd_models(args: argparse.Namespace) -> int:
    settings = _settings()
    folders = settings.model_search_dirs() + [Path(f) for f in args.folder]
    models = catalog.discover(folders)
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return EXIT_OK
    if not models:
        print("No models found in: " + ", ".join(str(f) for f in folders))
        return EXIT_OK
    width = max(len(m.name) for m in models)
    for m in models:
        note = f"  ({m.note})" if m.note else ""
        print(f"{m.name:<{width}}  {m.label:<24}  {m.path}{note}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate": cmd_generate,
    "models": cmd_models,
    "info": cli_info.cmd_info,
    "export": cli_project.cmd_export,
    "convert": stylegan_cli.cmd_convert,
    "interpolate": cli_interpolate.cmd_interpolate,
    "walk": cli_interpolate.cmd_walk,
    "grid": stylegan_cli.cmd_grid,
    "dataset": training_commands.cmd_dataset,
    "train": training_commands.cmd_train,
}


def main(argv: Sequence[str] | None = None, setup_logging: bool | None = None) -> int:
    """The command line. Logging goes through core.logs (one line per problem on the console, details and
    tracebacks in the log file); it is set up when run as a program (`argv` None) or when asked."""
    if setup_logging if setup_logging is not None else argv is None:
        import logging

        from aigc_desktop.core import logs

        logs.setup(console_level=logging.WARNING)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command in (None, "app"):
            from aigc_desktop.ui.app import main as app_main

            return app_main([])
        return COMMANDS[args.command](args)
    except (CliError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Cancelled.", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, its traceback in the log file
        import logging

        from aigc_desktop.core import logs

        if logs.log_file_in_use() is None:
            raise  # no log file to hold the details: Python's own traceback
        logging.getLogger("aigc_desktop.cli").error("%s: %s", type(exc).__name__, exc, exc_info=exc)
        return EXIT_FAILED
