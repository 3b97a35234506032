"""Stable Diffusion class models through diffusers: loading (folders, single files), schedulers, runs."""

import aigc_desktop  # noqa: F401 - offline flags first
from diffusers.utils import logging as _diffusers_logging

# Diffusers' info/warning chatter (ignored config keys, safety-checker notice) is not for our users.
_diffusers_logging.set_verbosity_error()
_diffusers_logging.disable_progress_bar()
