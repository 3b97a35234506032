"""Bad work refused before it starts: the estimate of a generation (core/estimate.py) against the device, and
the question when it looks too big or too slow ("Run anyway" / "Cancel").

    verdict = check(specs, device_info, measured_step, expected_kind)
    if verdict.warnings and not confirm(verdict): ...     # the job is not queued

`check` decides (no Qt); `ask` is the default question (a QMessageBox); the window holds `confirm` as an
attribute so tests (and offscreen runs) answer it themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from aigc_desktop.core import jobs
from aigc_desktop.core.estimate import DeviceInfo, Estimate, duration_text, estimate, warnings_for
from aigc_desktop.core.safe_io import human_bytes

log = logging.getLogger(__name__)

Measured = Callable[[str], Any]  # kind -> engine_client.StepMeasure | None


@dataclass(frozen=True)
class Verdict:
    warnings: tuple[str, ...] = ()
    memory_bytes: int = 0
    seconds: float = 0.0
    device: DeviceInfo | None = None

    @property
    def ok(self) -> bool:
        return not self.warnings

    def text(self) -> str:
        """What the question says: the estimate, then each warning on its line."""
        where = (self.device.name or self.device.kind.upper()) if self.device else "the device"
        head = f"Estimated: about {human_bytes(self.memory_bytes)} of memory"
        if self.seconds:
            head += f", about {duration_text(self.seconds)} on {where}"
        return head + "\n\n" + "\n".join(f"• {w}" for w in self.warnings)


def _measured_for(spec: Any, measured: Measured | None) -> tuple[float | None, Any]:
    """A step time measured on this very model (another model's says nothing about this one)."""
    if measured is None:
        return None, None
    m = measured(spec.kind)
    model, other = getattr(spec, "model", None), getattr(getattr(m, "spec", None), "model", None)
    if m is None or model is None or other is None or model.path != other.path:
        return None, None
    return m.seconds, m.spec


def check(specs: Sequence[Any], device: DeviceInfo, measured: Measured | None = None,
          expected_kind: str | None = None) -> Verdict:
    """The warnings for running `specs` one after the other on `device` (memory: the biggest job's; time:
    all of them). `expected_kind` is the device the settings ask for: while the engine has not reported it
    yet (it says "cpu" until torch is up), nothing is said rather than a CPU figure for a GPU machine. An
    estimate that cannot be made (an odd model file) never stops a job."""
    if expected_kind is not None and expected_kind != device.kind:
        return Verdict(device=device)
    memory, seconds = 0, 0.0
    for spec in specs:
        if not isinstance(spec, (jobs.DiffusionJob, jobs.StyleGANJob)) or getattr(spec, "live", False):
            continue
        step, at = _measured_for(spec, measured)
        try:
            est: Estimate = estimate(spec, device, step, at)
        except Exception as exc:  # noqa: BLE001 - a guess must never stand in the way
            log.info("No estimate for job %s: %s", spec.id, exc)
            continue
        memory, seconds = max(memory, est.memory_bytes), seconds + est.seconds
    if not memory:
        return Verdict(device=device)
    return Verdict(warnings_for(memory, seconds, device), memory, seconds, device)


def ask(parent, verdict: Verdict) -> bool:
    """The default question: a modal box with the estimate, "Run anyway" or "Cancel" (the default).
    Offscreen (tests, screenshots) nobody can answer: the job runs, the warning is logged."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QMessageBox

    if QGuiApplication.platformName() == "offscreen":
        log.warning("Running despite the estimate: %s", "; ".join(verdict.warnings))
        return True
    box = QMessageBox(QMessageBox.Icon.Warning, "This job looks too big", verdict.text(),
                      QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText("Run it anyway, or cancel and change the size, batch or steps.")
    run = box.addButton("Run anyway", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return box.clickedButton() is run


def allowed(specs: Sequence[Any], client, device_setting: str, confirm: Callable[[Verdict], bool]) -> bool:
    """True when `specs` may be queued: no warning, or the user chose "Run anyway". `client` is the window's
    EngineClient (None before it started: the CPU as this process sees it, which is all it can know)."""
    from aigc_desktop.core.device_probe import expected_kind

    if client is not None:
        device, measured = client.device_info, client.measured_step
    else:
        from aigc_desktop.engines.host import device_info

        device, measured = device_info("cpu"), None
    verdict = check(specs, device, measured, expected_kind(device_setting))
    return verdict.ok or bool(confirm(verdict))
