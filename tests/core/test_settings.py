import json

import pytest

from aigc_desktop.core import settings as settings_mod
from aigc_desktop.core.settings import SCHEMA_VERSION, Settings, default_path


def test_defaults_and_round_trip(tmp_path):
    s = Settings()
    assert s.get("device") == "auto" and s.get("model_folders") == []
    s.set("device", "cpu")
    s.set("model_folders", ["/a", "/b"])
    path = s.save(tmp_path / "settings.json")
    data = json.loads(path.read_text())
    assert data["version"] == SCHEMA_VERSION
    again = Settings.load(path)
    assert again.get("device") == "cpu" and again.get("model_folders") == ["/a", "/b"]
    assert not again.warnings


def test_default_path_is_isolated(isolated_dirs):
    assert str(default_path()).startswith(str(isolated_dirs["config"]))
    Settings().save()
    assert (isolated_dirs["config"] / "settings.json").exists()


def test_bad_values_rejected():
    s = Settings()
    with pytest.raises(ValueError):
        s.set("device", "tpu")
    with pytest.raises(ValueError):
        s.set("threads", -1)
    with pytest.raises(KeyError):
        s.set("nope", 1)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "", '{"settings": 5}', "\x00\xff"])
def test_corrupt_file_falls_back_to_defaults(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_text(content)
    s = Settings.load(path)
    assert s.get("device") == "auto"
    assert s.warnings and "unreadable" in s.warnings[0]
    assert (tmp_path / "settings.json.bad").exists()  # kept aside, not lost


def test_wrong_typed_value_uses_default_with_warning(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "settings": {"device": 3, "threads": 2, "unknown_key": 1}}))
    s = Settings.load(path)
    assert s.get("device") == "auto" and s.get("threads") == 2
    assert any("device" in w for w in s.warnings)


def test_migration_hook_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(settings_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(settings_mod.MIGRATIONS, 1, lambda v: {**v, "threads": v.pop("cpu_threads", 0)})
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "settings": {"cpu_threads": 3}}))
    assert Settings.load(path).get("threads") == 3


def test_newer_version_is_read_with_warning(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 99, "settings": {"device": "cpu"}}))
    s = Settings.load(path)
    assert s.get("device") == "cpu" and any("newer" in w for w in s.warnings)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    Settings({"device": "cpu"}).save(path)

    def boom(*_a, **_k):
        raise OSError("disk full")

    from aigc_desktop.core import files  # the one atomic write renames there

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        Settings({"device": "cuda"}).save(path)
    assert Settings.load(path).get("device") == "cpu"
