"""`.aigc` project files (Qt-free): one zip per project holding the whole workspace.

    project = open_project("cat.aigc")      # checked first, then built (lazily when large)
    project.document                        # the core.document.Document
    project.save()                          # atomic; unchanged members copied, changed layers re-encoded
    save_document(doc, "new.aigc")

See manifest.py for the format, container.py for what an untrusted file is checked for, recovery.py for
autosave and crash recovery.
"""

from aigc_desktop.core.project.errors import NewerProjectError, ProjectError
from aigc_desktop.core.project.manifest import FORMAT, MIGRATIONS, VERSION, models_used
from aigc_desktop.core.project.project import SUFFIX, Project, inspect_project, open_project, save_document

__all__ = ["FORMAT", "VERSION", "MIGRATIONS", "SUFFIX", "Project", "ProjectError", "NewerProjectError",
           "open_project", "save_document", "inspect_project", "models_used"]
