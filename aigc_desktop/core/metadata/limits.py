"""Byte and pixel limits of metadata reading, decided before anything is read.

Generation metadata is small: A1111's text is a few KiB, a large ComfyUI editor graph a few hundred KiB.
The limits leave room for the largest real files by a wide margin and refuse what only a broken or
hostile file holds (a text chunk of gigabytes, a zip bomb in zTXt, a 100,000 x 100,000 header).
"""

from __future__ import annotations

from aigc_desktop.core.safe_io import MiB

TEXT_CHUNK_MAX = 8 * MiB  # one text chunk (tEXt / zTXt / iTXt), after inflating
TEXT_TOTAL_MAX = 32 * MiB  # all text chunks of one image together
EXIF_MAX = 4 * MiB  # an EXIF block (JPEG caps it at 64 KiB; PNG eXIf and WebP EXIF do not)
SEGMENTS_MAX = 4096  # chunks / markers walked before giving up on a container
IMAGE_FILE_MAX = 1024 * MiB  # files handed to Pillow (formats we do not walk ourselves)
# Pillow's own DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS); refused from the header.
MAX_PIXELS = 178_956_970
STEALTH_MAX_PIXELS = 64 * 1024 * 1024  # stealth metadata needs the pixels decoded: 256 MiB as RGBA
STEALTH_MAX_BYTES = 4 * MiB  # a stealth payload (before and after gunzip)
RECORD_JSON_MAX = 1 * MiB  # a settings record as JSON (Fooocus, InvokeAI, NovelAI, Civitai's extraMetadata)
PATTERN_WINDOW = 64 * 1024  # regular expressions that are not linear-time run on this prefix only
