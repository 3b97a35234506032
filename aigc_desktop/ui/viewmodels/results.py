"""Where a job's previews and images go, read from its spec's target (no side tables): live previews into
the target rectangle, finished images into the staging strip (a seed grid also as one image in rows and
columns), the model's card gets the last image, a StyleGAN record tells the model's family."""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot

from aigc_desktop.core import jobs
from aigc_desktop.ui.viewmodels.document import DocumentViewModel, StagedResult
from aigc_desktop.ui.viewmodels.queue import QueueViewModel


def grid_image(images: list) -> "object":
    """Images of one size laid out in rows and columns (as square as it gets)."""
    from PIL import Image

    n = len(images)
    cols = int(n ** 0.5 + 0.999)
    rows = -(-n // cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h), (0, 0, 0))
    for i, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((i % cols) * w, (i // cols) * h))
    return grid


class ResultsViewModel(QObject):
    def __init__(self, queue: QueueViewModel, document: DocumentViewModel, models=None, stylegan=None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue, self.document, self.models, self.stylegan = queue, document, models, stylegan
        queue.preview_event.connect(self.on_preview)
        queue.job_finished.connect(self.on_finished)
        # Made but not saved: staged like a finished job's images (those not saved have no path), so the user
        # can accept them onto the canvas or export them elsewhere.
        queue.job_unsaved.connect(self.on_finished)
        for signal in (queue.job_failed, queue.job_cancelled):
            signal.connect(self.on_ended)

    def target_rect(self, job_id: str, size: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """The job's target rectangle (the frame when it was queued; now, for a job without one); a result
        of another size keeps the rectangle's corner."""
        spec = self.queue.spec(job_id)
        frame = (spec.target or {}).get("frame") if spec is not None and spec.target else None
        x, y, w, h = frame if frame else self.document.doc.frame.rect
        if size is not None and tuple(size) != (w, h):
            w, h = size
        return int(x), int(y), int(w), int(h)

    @Slot(str, object)
    def on_preview(self, job_id: str, event: jobs.Preview) -> None:
        spec = self.queue.spec(job_id)
        if spec is not None and spec.target is None:
            return  # not for the canvas
        self.document.show_preview(job_id, event.index, event.image, self.target_rect(job_id))

    @Slot(str)
    def on_ended(self, job_id: str, *_args) -> None:
        self.document.clear_preview()

    @Slot(str, object)
    def on_finished(self, job_id: str, event: jobs.Finished | jobs.SaveFailed) -> None:
        self.document.clear_preview()
        spec = self.queue.spec(job_id)
        family = (event.records[0].get("model") or {}).get("family") if event.records else None
        if self.stylegan is not None and isinstance(spec, jobs.StyleGANJob) and family in ("stylegan2", "stylegan3"):
            self.stylegan.set_family(family)
        if spec is not None and spec.target is None:
            return  # not for the canvas (a training run's samples are in the Train panel)
        paths = list(event.paths) + [None] * (len(event.images) - len(event.paths))
        results = [StagedResult(img, dict(rec), path, self.target_rect(job_id, img.size), job_id)
                   for img, rec, path in zip(event.images, event.records, paths)]
        if isinstance(spec, jobs.StyleGANJob) and len(results) > 1:
            grid = grid_image([r.image for r in results])
            record = {**results[0].record, "grid_seeds": [r.record.get("seed") for r in results]}
            x, y = self.target_rect(job_id)[:2]
            results.insert(0, StagedResult(grid, record, None, (x, y, grid.width, grid.height), job_id))
        if not results:
            return
        self.document.stage(results)
        model = getattr(spec, "model", None)
        if self.models is not None and model is not None:
            self.models.set_last_image(model.path, results[-1].image)
