from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core.errors import UserError
from aigc_desktop.training import dataset
from aigc_desktop.training.common import batch_indices


def test_clean_name_gives_plain_words():
    assert dataset.clean_name(":grinning_face_with_big_eyes:") == "grinning face with big eyes"
    assert dataset.clean_name(":red_apple:") == "red apple"
    assert dataset.clean_name(":man’s_shoe:") == "man's shoe"
    assert dataset.clean_name(":A_button_(blood_type):") == "a button blood type"


def test_main_word_is_the_category_not_the_qualifier():
    captions = ["red apple", "green apple", "red heart", "blue heart", "cat face", "grinning cat", "grinning face",
                "sun", "sun behind cloud"]
    counts = dataset.word_counts(captions)
    assert dataset.main_word("red apple", counts) == "apple"
    assert dataset.main_word("red heart", counts) == "heart"
    assert dataset.main_word("cat face", counts) == "cat"
    assert dataset.main_word("sun", counts) == "sun"


def test_emoji_entries_subsets():
    everything = dataset.emoji_entries()
    curated = dataset.emoji_entries(subset="curated")
    with_tones = dataset.emoji_entries(skin_tones=True)
    assert 1800 < len(everything) < len(with_tones)
    assert 300 < len(curated) < 600
    names = {c for _, c in curated}
    assert {"red apple", "cat face", "sun", "red heart"} <= names
    assert not any(ch in dataset.SKIN_TONES for e, _ in everything for ch in e)
    with pytest.raises(UserError):
        dataset.emoji_entries(subset="nope")


def test_load_folder_flattens_crops_and_reads_captions(tmp_path):
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (10, 0, 30, 20))
    rgba.save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text(" blue box \n", encoding="utf-8")
    Image.new("RGB", (16, 16), (0, 255, 0)).save(tmp_path / "b.jpg")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    data = dataset.load_folder(tmp_path, 8)
    assert data.files == ["a.png", "b.jpg"]
    assert data.captions == ["blue box", ""]
    assert data.images.shape == (2, 8, 8, 3) and data.images.dtype == np.uint8
    # centre crop of the 40x20 image is the blue box; transparent pixels become the background
    assert tuple(data.images[0, 4, 4]) == (0, 0, 255)
    tensor = data.to_tensor()
    assert tensor.shape == (2, 3, 8, 8) and float(tensor.min()) >= -1 and float(tensor.max()) <= 1


def test_load_folder_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        dataset.load_folder(tmp_path / "missing", 8)
    with pytest.raises(UserError, match="No images"):
        dataset.load_folder(tmp_path, 8)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"^No readable images .*\(1 file skipped: bad.png \(not a readable image\)\)$"):
        dataset.load_folder(tmp_path, 8)


def test_bad_files_are_skipped_and_counted_not_fatal(tmp_path):
    Image.new("RGB", (16, 16), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("red", encoding="utf-8")
    Image.new("RGB", (16, 16), (0, 0, 255)).save(tmp_path / "z.jpg")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG but not really")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.png")
    (tmp_path / "trunc.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])  # cut mid-file
    (tmp_path / "whole.png").unlink()
    (tmp_path / "notes.md").write_text("not training data", encoding="utf-8")
    (tmp_path / "emoji.json").write_text("{}", encoding="utf-8")  # our manifest: not counted
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")  # hidden: not counted
    (tmp_path / "z.txt").write_bytes(b"blue \xff")  # a caption that is not UTF-8 still loads
    data = dataset.load_folder(tmp_path, 8)
    assert data.files == ["a.png", "z.jpg"] and data.images.shape == (2, 8, 8, 3)
    assert data.captions[0] == "red" and data.captions[1].startswith("blue")
    assert [name for name, _ in data.skipped] == ["bad.png", "notes.md", "trunc.png"]
    message = data.skipped_message()
    assert message.startswith("3 files skipped: bad.png (not a readable image), notes.md (not an image), trunc.png (")
    assert "\n" not in message


def test_the_skipped_list_is_shortened_in_its_one_line():
    skipped = [(f"f{i}.png", "not a readable image") for i in range(9)]
    assert dataset.skipped_message(skipped).endswith("f4.png (not a readable image) and 4 more")
    assert dataset.skipped_message([]) == ""


def test_batch_indices_cover_every_image_once_per_epoch():
    seen = np.concatenate([batch_indices(s, 10, 5, seed=3).numpy() for s in range(4)])
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert list(batch_indices(1, 10, 5, seed=3)) == list(batch_indices(1, 10, 5, seed=3))
    assert list(batch_indices(0, 3, 8, seed=0)) != []  # batches larger than the data set wrap around


def test_emoji_dataset_build(tmp_path):
    try:
        font = dataset.find_emoji_font()
    except UserError:
        pytest.skip("Noto Color Emoji font not installed (apt-get install fonts-noto-color-emoji)")
    renderer = dataset.EmojiRenderer(font, size=32)
    apple = renderer.render("🍎")
    assert apple is not None and apple.size == (32, 32)
    assert renderer.render("🍎🍌") is None  # two glyphs
    report = dataset.build_emoji_dataset(tmp_path, size=32, subset="curated", font=str(font))
    assert report.written > 300
    manifest = json.loads((tmp_path / "emoji.json").read_text(encoding="utf-8"))
    first = manifest["items"][0]
    assert (tmp_path / first["file"]).is_file()
    assert (tmp_path / first["file"]).with_suffix(".txt").read_text(encoding="utf-8").strip() == first["caption"]
