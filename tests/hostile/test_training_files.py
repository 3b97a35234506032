"""A training run folder may come from anyone: its config.json, loss log and bookkeeping JSON are read with
core.safe_io's limits and checked by type, so a broken or hostile one is a one-line UserError (or skipped
bookkeeping), never a traceback, a hang or a RecursionError."""

from __future__ import annotations

import json
import os

import pytest

from aigc_desktop.core.errors import UserError
from aigc_desktop.training import runfiles
from aigc_desktop.training.commands import run_options
from aigc_desktop.training.publish import model_steps, summarize
from aigc_desktop.training.registry import make_config

DEEP = "[" * 100_000 + "]" * 100_000


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_loss_log_skips_rows_that_are_not_rows(tmp_path):
    lines = ['{"step": 1, "time": 0.5, "loss": 0.25}', DEEP, '{"step": 2, "loss": NaN}', '{"step": 3, "loss": 1e999}',
             '{"step": "4", "loss": 1}', '{"step": 5, "loss": {"a": 1}}', "[1, 2]", "not json", "",
             '{"step": true, "loss": 1}', '{"step": 6, "loss": 0.125}']
    (tmp_path / runfiles.LOSSES).write_text("\n".join(lines), encoding="utf-8")
    assert runfiles.read_losses(tmp_path) == [{"step": 1, "time": 0.5, "loss": 0.25}, {"step": 6, "loss": 0.125}]


def test_loss_log_has_a_size_limit_and_never_opens_a_fifo(tmp_path, monkeypatch):
    (tmp_path / runfiles.LOSSES).write_text('{"step": 1, "loss": 0.5}\n' * 100, encoding="utf-8")
    monkeypatch.setattr(runfiles, "MAX_LOSSES_BYTES", 1000)
    with pytest.raises(UserError, match="loss log"):
        runfiles.read_losses(tmp_path)
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / runfiles.LOSSES)
    assert runfiles.read_losses(fifo) == []


@pytest.mark.parametrize("text, expected", [
    (DEEP, "nests deeper"),
    ("[1, 2]", "not a run config"),
    ('{"kind": {"a": 1}}', "run, not vae"),
    ('{"steps": Infinity}', "not valid JSON"),
    ("\xff\xfe garbage", "not"),
])
def test_run_config_of_resume(tmp_path, text, expected):
    (tmp_path / "config.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(UserError) as err:
        run_options(tmp_path, "vae")
    assert expected in _one_line(err.value)


@pytest.mark.parametrize("options, name", [
    ({"steps": {"a": 1}}, "steps"),
    ({"steps": True}, "steps"),
    ({"lr": [0.1]}, "lr"),
    ({"ema_decay": "fast"}, "ema_decay"),
    ({"log_every": 1.5}, "log_every"),
    ({"device": 5}, "device"),
])
def test_saved_options_of_the_wrong_type_are_one_line(tmp_path, options, name):
    (tmp_path / "config.json").write_text(json.dumps({"kind": "vae", **options}), encoding="utf-8")
    saved = run_options(tmp_path, "vae")
    with pytest.raises(UserError) as err:
        make_config("vae", data=str(tmp_path), out=str(tmp_path), **saved)
    assert f"Option {name}" in _one_line(err.value)


def test_publish_reads_run_and_model_json_with_limits(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(DEEP, encoding="utf-8")
    with pytest.raises(UserError, match="not a training run folder") as err:
        summarize(run)
    _one_line(err.value)
    (run / "config.json").write_text("[]", encoding="utf-8")
    with pytest.raises(UserError, match="not a JSON object"):
        summarize(run)
    (run / "config.json").write_text('{"kind": ["vae"]}', encoding="utf-8")
    (run / runfiles.LOSSES).write_text('{"step": 3, "loss": 0.5}\n{"step": "x"}\n', encoding="utf-8")
    summary = summarize(run)
    assert (summary.kind, summary.steps, summary.final_losses) == ("", 3, {"loss": 0.5})
    model = tmp_path / "model"
    model.mkdir()
    (model / "training.json").write_text(DEEP, encoding="utf-8")
    (model / "stylegan.json").write_text('{"source": {"steps": 12}}', encoding="utf-8")
    assert model_steps(model) == 12
    os.mkfifo(model / "vae_morph.json")  # never opened
    assert model_steps(model) == 12


def test_diffusion_vae_stage_bookkeeping(tmp_path):
    from aigc_desktop.training.diffusion import DiffusionConfig, DiffusionTrainer

    trainer = object.__new__(DiffusionTrainer)
    trainer.config = DiffusionConfig(data=str(tmp_path), out=str(tmp_path), vae_steps=5)
    trainer.out = tmp_path
    model = tmp_path / "vae_stage" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}", encoding="utf-8")
    (model / "training.json").write_text('{"trained_steps": 9}', encoding="utf-8")
    assert trainer._vae_folder() == model  # done: no training
    (model / "training.json").write_text(DEEP, encoding="utf-8")
    with pytest.raises(UserError) as err:
        trainer._vae_folder()
    assert "nests deeper" in _one_line(err.value)
