"""The one error family of project files: every problem with a `.aigc` file is one clear line."""

from __future__ import annotations

from aigc_desktop.core.errors import UserError


class ProjectError(UserError):
    """A project file that cannot be opened or saved; str(exc) is the one line shown to the user."""


class NewerProjectError(ProjectError):
    """A project written by a newer AIGC Desktop (a format version this one does not know)."""
