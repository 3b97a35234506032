"""Old import path of the metadata readers, kept for code that still imports from here.

The readers live in the `aigc_desktop.core.metadata` package now (one module per tool); import from there.
"""

from aigc_desktop.core.metadata.a1111 import parse_a1111, split_a1111
from aigc_desktop.core.metadata.read import parse_parameters
from aigc_desktop.core.metadata.samplers import a1111_scheduler, comfy_scheduler, invoke_scheduler

__all__ = ["a1111_scheduler", "comfy_scheduler", "invoke_scheduler", "parse_a1111", "parse_parameters",
           "split_a1111"]
