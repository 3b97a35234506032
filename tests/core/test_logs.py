"""The log: one line per problem on the console, tracebacks in the rotating file in the user data folder."""

from __future__ import annotations

import logging

import pytest

from aigc_desktop.core import jobs, logs
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.runner import Runner


@pytest.fixture
def app_logging(isolated_dirs, capsys):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    path = logs.setup()
    yield path
    for handler in root.handlers[:]:
        if handler not in saved[0]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[1])


def test_log_file_is_in_the_user_data_folder(app_logging, isolated_dirs):
    assert app_logging == isolated_dirs["data"] / "logs" / "aigc-desktop.log"
    assert logs.log_dir() == app_logging.parent


def test_a_user_error_is_one_line_everywhere_and_a_bug_keeps_its_traceback_in_the_file(app_logging, capsys):
    class Refusing:
        def run(self, spec, emit, cancelled):
            raise UserError("CUDA was chosen but this machine has no CUDA device")

    class Buggy:
        def run(self, spec, emit, cancelled):
            return None.images

    Runner(engines={"fake": Refusing()}).run(jobs.FakeJob(), lambda e: None, lambda: False)
    Runner(engines={"fake": Buggy()}).run(jobs.FakeJob(), lambda e: None, lambda: False)
    for handler in logging.getLogger().handlers:
        handler.flush()
    console = capsys.readouterr().err.strip().splitlines()
    assert len(console) == 2, console
    assert console[0].endswith("failed: CUDA was chosen but this machine has no CUDA device")
    assert "AttributeError" in console[1] and f"(details in {app_logging})" in console[1]
    text = app_logging.read_text(encoding="utf-8")
    assert "no CUDA device" in text and text.count("Traceback") == 1 and "return None.images" in text


def test_setup_twice_does_not_double_the_handlers(app_logging):
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_aigc_log_handler", False)]
    logs.setup()
    again = [h for h in logging.getLogger().handlers if getattr(h, "_aigc_log_handler", False)]
    assert len(ours) == len(again) == 2


def test_an_unwritable_data_folder_leaves_the_console(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("AIGC_DESKTOP_DATA_DIR", str(blocker))
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        assert logs.setup() is None
        assert "Cannot write the log file" in capsys.readouterr().err
    finally:
        for handler in root.handlers[:]:
            if handler not in saved:
                root.removeHandler(handler)
                handler.close()
