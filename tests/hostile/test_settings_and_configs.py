"""The settings file and diffusers configs from disk: deep, huge, non-finite or wrong-typed JSON and files
that are not regular files give defaults with a warning (settings) or one line naming file and field."""

from __future__ import annotations

import json

import pytest
import torch

from aigc_desktop.core import diffusers_config
from aigc_desktop.core.errors import ModelLoadError, UserError
from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.core.settings import Settings
from aigc_desktop.engines.diffusion.loader import load_model
from tests.hostile.conftest import make_fifo, one_error_line, run_cli


@pytest.mark.parametrize("content, warning", [
    ('{"settings": ' + "[" * 20_000 + "]" * 20_000 + "}", "nests deeper"),
    ('{"version": 1, "settings": {"memory_budget_gb": Infinity}}', "not valid JSON"),
    ('{"version": 1, "settings": {"threads": NaN}}', "not valid JSON"),
    ('{"version": 1e999, "settings": {}}', "not valid JSON"),
    ('{"version": "1", "settings": {}}', "version"),
    ('{"version": 1, "settings": {"device": {"a": 1}}}', "device must be str"),
    ('{"version": 1, "settings": {"model_folders": "not a list"}}', "model_folders"),
    ('{"version": 1, "settings": {"models_dir": "' + "x" * 10_000 + '"}}', "at most 4096 characters"),
])
def test_bad_settings_fall_back_to_defaults_with_a_warning(tmp_path, content, warning):
    path = tmp_path / "settings.json"
    path.write_text(content)
    s = Settings.load(path)
    assert s.get("device") == "auto" and s.get("threads") == 0
    assert any(warning in w for w in s.warnings), s.warnings
    assert all("\n" not in w for w in s.warnings)


def test_settings_that_are_not_a_regular_file_or_huge(tmp_path):
    fifo = tmp_path / "settings.json"
    make_fifo(fifo)
    s = Settings.load(fifo)  # would block forever in open()
    assert s.get("device") == "auto" and "not a regular file" in s.warnings[0]
    assert fifo.exists()  # left where it is, not renamed
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    assert "not a regular file" in Settings.load(zero).warnings[0]
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(3 << 30)  # a sparse 3 GiB file: refused from its size, never read
    assert "3.0 GiB" in Settings.load(huge).warnings[0]


def test_cli_runs_with_a_hostile_settings_file(isolated_dirs, capsys):
    config = isolated_dirs["config"]
    config.mkdir(parents=True, exist_ok=True)
    make_fifo(config / "settings.json")
    code, out, _ = run_cli(capsys, "models")
    assert code == 0


@pytest.mark.parametrize("unet, field", [
    ({"sample_size": 10 ** 12}, "sample_size"),
    ({"sample_size": "64"}, "sample_size"),
    ({"in_channels": [4]}, "in_channels"),
    ({"block_out_channels": 32}, "block_out_channels"),  # a number where a list belongs
    ({"block_out_channels": [32, -1]}, "block_out_channels"),
    ({"cross_attention_dim": {"a": 1}}, "cross_attention_dim"),
    ({"_class_name": ["UNet2DConditionModel"]}, "_class_name"),
    ({"layers_per_block": True}, "layers_per_block"),
])
def test_component_config_fields_are_checked(tmp_path, tiny_sd_path, unet, field):
    import shutil

    folder = shutil.copytree(tiny_sd_path, tmp_path / "m")
    config_path = folder / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config.update(unet)
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRef(str(folder)), torch.device("cpu"), torch.float32)
    message = str(err.value)
    assert "m/unet/config.json" in message and field in message and "\n" not in message, message


def test_model_index_schema(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for index, fragment in ((["a list"], "not a JSON object"), ({"unet": ["diffusers", "UNet"]}, "no _class_name"),
                            ({"_class_name": "P", "unet": ["diffusers", {"x": 1}]}, "[library, class]"),
                            ({"_class_name": "P", "unet": {"a": "b"}}, "got an object"),
                            ({"_class_name": "x" * 10_000}, "_class_name")):
        (folder / "model_index.json").write_text(json.dumps(index))
        with pytest.raises(UserError, match=None) as err:
            diffusers_config.check_folder(folder)
        assert fragment in str(err.value) and "f/model_index.json" in str(err.value)


def test_weight_file_that_is_a_fifo_inside_a_folder(tmp_path, tiny_sd_path, capsys):
    import shutil

    folder = shutil.copytree(tiny_sd_path, tmp_path / "m")
    weights = next((folder / "unet").glob("*.safetensors"))
    weights.unlink()
    make_fifo(weights)
    code, _, err = run_cli(capsys, "generate", "--model", folder, "--prompt", "x", "--steps", "1",
                           "--width", "64", "--height", "64", "--out", tmp_path / "o.png", "--quiet")
    assert code == 1 and "not a regular file" in one_error_line(err)


def test_a_huge_model_index_is_refused_from_its_size(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    with open(folder / "model_index.json", "wb") as fh:
        fh.truncate(2 << 30)  # sparse: 2 GiB claimed, nothing read
    with pytest.raises(UserError) as err:
        diffusers_config.check_folder(folder)
    assert "2.0 GiB" in str(err.value) and "model_index.json" in str(err.value)
