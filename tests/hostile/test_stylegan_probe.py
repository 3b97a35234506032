"""The StyleGAN panel's cheap family probe (GUI thread) reads a folder's stylegan.json with the JSON limits."""

import json

from aigc_desktop.ui.viewmodels.stylegan import probe_family


def test_probe_reads_the_family_and_refuses_deep_or_odd_json(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "stylegan.json").write_text(json.dumps({"family": "stylegan3"}))
    assert probe_family(str(good)) == "stylegan3"
    for name, text in (("deep", "[" * 100_000 + "]" * 100_000), ("list", "[1, 2]"), ("nan", '{"family": NaN}'),
                       ("dict", '{"family": {"a": 1}}'), ("binary", "\udcff")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "stylegan.json").write_bytes(text.encode("utf-8", "surrogateescape"))
        assert probe_family(str(folder)) is None, name
