"""`interpolate` (and its StyleGAN alias `walk`): latent travels on the command line (no torch at import time).

    aigc-desktop interpolate --model emoji-morph-vae --images a.png b.png c.png --frames 12 --out morph.gif
    aigc-desktop interpolate --model emoji-diffusion --prompts "red apple" "green apple" --seeds 1 2 \\
                             --frames 8 --ease ease-in-out --out apples.mp4
    aigc-desktop interpolate --model emoji-stylegan --seeds 1 2 3 --frames 16 --loop --out travel.webm
    aigc-desktop walk --model FFHQ.pkl --seeds 1,2,3 --frames 30 [--space w|z] [--loop] --out walk.mp4

--images makes a VAE morph (a morph VAE folder, an SD model's VAE or a VAE file), --prompts a diffusion
travel (one seed for all prompts, or one per prompt), --seeds alone a StyleGAN travel (or a seed travel of one
prompt on a diffusion model). Progress goes to stderr; bad input is one line and exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from aigc_desktop.core.errors import UserError


def _seed_list(text: str) -> list[int]:
    from aigc_desktop.cli_stylegan import _seeds

    return _seeds(text)


def _flat(groups: list[list[int]] | None) -> list[int]:
    return [s for g in (groups or []) for s in g]


def _common(p: argparse.ArgumentParser) -> None:
    from aigc_desktop.cli_common import number as _float, whole_number as _int

    p.add_argument("--model", required=True, help="model file or folder (or a discovered model's name)")
    p.add_argument("--fps", type=_float, default=None, help="frames per second of the export (12; walk: 30)")
    p.add_argument("--hold", type=_int, default=0, help="extra frames that hold every keyframe (0)")
    p.add_argument("--scale", type=_float, default=1.0, help="export frame size factor (1)")
    p.add_argument("--loop-count", dest="loop_count", type=_int, default=0, help="GIF / WebP loops (0 = forever)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--out", required=True, help="a .gif, .webp, .mp4 or .webm file, or a folder for PNG frames")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from aigc_desktop.cli_common import number as _float, whole_number as _int
    from aigc_desktop.cli_stylegan import _add_latent_args
    from aigc_desktop.core.interpolate import EASINGS
    from aigc_desktop.core.params import SCHEDULERS

    i = sub.add_parser("interpolate", help="morph between images, prompts or seeds and export the animation")
    keys = i.add_mutually_exclusive_group()
    keys.add_argument("--images", nargs="+", metavar="IMAGE", help="keyframe images: a VAE morph")
    keys.add_argument("--prompts", nargs="+", metavar="PROMPT", help="keyframe prompts: a diffusion travel")
    i.add_argument("--seeds", nargs="+", type=_seed_list, metavar="SEED",
                   help="keyframe seeds (1 2 3 or 1,2,3): a StyleGAN travel, or the prompts' seeds")
    i.add_argument("--frames", type=_int, default=16, help="frames per segment, keyframe to keyframe (16)")
    i.add_argument("--mode", choices=("slerp", "lerp"), default="slerp",
                   help="slerp (default) or lerp; StyleGAN: slerp in Z or lerp in W")
    i.add_argument("--ease", default="linear", help=f"easing of every segment: {', '.join(EASINGS)}")
    ends = i.add_mutually_exclusive_group()
    ends.add_argument("--loop", action="store_true", help="travel back to the first keyframe")
    ends.add_argument("--pingpong", action="store_true", help="play forth and back")
    _common(i)
    vae = i.add_argument_group("VAE morphs")
    vae.add_argument("--size", type=_int, default=None, help="image side (default: the VAE's own, or the images')")
    d = i.add_argument_group("diffusion travels")
    d.add_argument("--negative", default="", help="negative prompt of every keyframe")
    d.add_argument("--steps", type=_int, default=20)
    d.add_argument("--cfg", type=_float, default=7.0)
    d.add_argument("--width", type=_int, default=None)
    d.add_argument("--height", type=_int, default=None)
    d.add_argument("--scheduler", default="euler", help=f"one of: {', '.join(SCHEDULERS)} (euler: no sampler "
                                                       "noise, the smoothest travels)")
    d.add_argument("--strength", type=_float, default=0.0,
                   help="0-1: tie in-between frames to the keyframes' images (img2img; 0 = off)")
    _add_latent_args(i.add_argument_group("StyleGAN travels"), with_seeds=False)

    w = sub.add_parser("walk", help="StyleGAN latent walk between keyframe seeds (an alias of interpolate)")
    w.add_argument("--seeds", type=_seed_list, required=True, help="keyframe seeds, e.g. 1,2,3")
    w.add_argument("--frames", type=_int, default=30, help="frames per transition (30)")
    w.add_argument("--space", choices=("w", "z"), default="w", help="lerp in W (default) or slerp in Z")
    w.add_argument("--loop", action="store_true", help="return to the first keyframe")
    w.add_argument("--easing", "--ease", dest="ease", default="linear", help=f"{', '.join(EASINGS)}")
    _common(w)
    _add_latent_args(w, with_seeds=False)


def _timeline(keys: list, args: argparse.Namespace, mode: str, fps: float) -> dict[str, Any]:
    from aigc_desktop.core.interpolate import Timeline, easing_name

    timeline = Timeline.uniform(keys, frames=args.frames, easing=easing_name(args.ease), hold=args.hold,
                                mode=mode, loop=bool(args.loop), pingpong=bool(getattr(args, "pingpong", False)),
                                fps=fps)
    timeline.validate()  # fewer than two keyframes, bad frames: one line
    return timeline.to_state()


def _stylegan_options(args: argparse.Namespace) -> tuple[tuple[str, Any], ...]:
    from aigc_desktop.cli_stylegan import _latent_fields

    fields = _latent_fields(args)
    fields.pop("device", None)
    fields.pop("dtype", None)
    return tuple(fields.items())


def build_job(args: argparse.Namespace) -> Any:
    """The TravelJob the arguments describe."""
    from pathlib import Path

    from aigc_desktop.cli_common import CliError, resolve_model
    from aigc_desktop.core.catalog import DIFFUSION_KINDS
    from aigc_desktop.core.interpolate import Keyframe
    from aigc_desktop.core.jobs import ModelRef, TravelJob

    info = resolve_model(args.model)
    seeds = _flat(args.seeds)
    fps = args.fps or 12.0
    common = dict(device=args.device, dtype=args.dtype, out=str(Path(args.out).expanduser()),
                  loop_count=args.loop_count, scale=args.scale)
    if args.images:
        if info.kind not in ("vae_morph", "vae", *DIFFUSION_KINDS):
            raise CliError(f"{info.name} is not a VAE or a model with one (found {info.label}); VAE morphs need "
                           "a morph VAE folder, an SD model or a VAE file")
        if seeds:
            raise CliError("--seeds does not go with --images (a VAE morph has no seeds)")
        for f in args.images:
            if not Path(f).expanduser().is_file():
                raise CliError(f"Image not found: {f}")
        keys = [Keyframe(image=str(Path(f).expanduser()), label=Path(f).stem) for f in args.images]
        return TravelJob(travel="vae", model=ModelRef(info.path, kind=info.kind, family=info.family),
                         timeline=_timeline(keys, args, args.mode, fps), size=args.size, **common)
    if info.kind in DIFFUSION_KINDS:
        from aigc_desktop.core.params import GenerationParams

        prompts = list(args.prompts or [""])
        seeds = seeds or [0]
        if len(prompts) == 1 and len(seeds) > 1:
            prompts = prompts * len(seeds)  # a seed travel of one prompt
        elif len(seeds) == 1 and len(prompts) > 1:
            seeds = seeds * len(prompts)  # a prompt travel on one seed
        if len(prompts) != len(seeds):
            raise CliError(f"{len(prompts)} prompts but {len(seeds)} seeds: give one seed, or one per prompt")
        keys = [Keyframe(prompt=p, seed=s, label=p[:24] or str(s)) for p, s in zip(prompts, seeds)]
        size = info.default_size
        params = GenerationParams(negative_prompt=args.negative, seed=seeds[0], steps=args.steps,
                                  cfg_scale=args.cfg, width=args.width or size, height=args.height or size,
                                  scheduler=args.scheduler)
        return TravelJob(travel="diffusion", model=ModelRef(info.path, kind=info.kind, family=info.family),
                         timeline=_timeline(keys, args, args.mode, fps), params=params, strength=args.strength,
                         **common)
    if info.kind == "stylegan":
        if args.prompts:
            raise CliError(f"{info.name} is a StyleGAN model: it takes --seeds, not --prompts")
        keys = [Keyframe(seed=s, label=str(s)) for s in seeds]
        return TravelJob(travel="stylegan", model=ModelRef(info.path, kind="stylegan"),
                         timeline=_timeline(keys, args, args.mode, fps), stylegan=_stylegan_options(args), **common)
    detail = f": {info.note}" if info.note else ""
    raise CliError(f"{info.name} cannot interpolate (found {info.label}{detail}); use a morph VAE with --images, "
                   "a diffusion model with --prompts or a StyleGAN model with --seeds")


def _run(spec: Any, quiet: bool) -> int:
    from aigc_desktop.cli_common import EXIT_OK, failure_code, run_job

    spec.validate()  # bad input: one line, exit 2
    end = run_job(spec, quiet)
    code = failure_code(end)
    if code is not None:
        return code
    print(end.records[0]["travel"]["output"])
    return EXIT_OK


def cmd_interpolate(args: argparse.Namespace) -> int:
    return _run(build_job(args), args.quiet)


def cmd_walk(args: argparse.Namespace) -> int:
    """`walk` is `interpolate --seeds ...` for a StyleGAN model: --space w is --mode lerp, z is slerp."""
    from aigc_desktop.cli_common import CliError, resolve_model

    info = resolve_model(args.model)
    if info.kind != "stylegan":
        detail = f": {info.note}" if info.note else ""
        raise CliError(f"{info.name} is not a StyleGAN model (found {info.label}{detail})")
    if len(_flat([args.seeds])) < 2:
        raise UserError("A walk needs at least two keyframe seeds")
    ns = argparse.Namespace(**vars(args))
    ns.seeds, ns.images, ns.prompts, ns.pingpong = [args.seeds], None, None, False
    ns.mode = "lerp" if args.space == "w" else "slerp"
    ns.fps = args.fps or 30.0
    return _run(build_job(ns), args.quiet)
