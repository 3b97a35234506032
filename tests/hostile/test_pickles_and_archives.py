"""PyTorch files and pickles from strangers: zip bombs, forged member sizes, forged legacy storages and
payloads. Each is refused in one line before torch or zipfile reads the member, and no payload ever runs
(the weights-only unpickler and the StyleGAN restricted unpickler stay exactly as strict)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile

import pytest
import torch

from aigc_desktop.core import torch_files
from aigc_desktop.core.detect import identify
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.engines.diffusion.embeddings import load_embedding
from aigc_desktop.engines.diffusion.loader import load_model
from aigc_desktop.engines.stylegan import loaders, safe_pickle
from aigc_desktop.testing.stylegan import write_malicious_pickle
from tests.hostile.conftest import make_fifo


class Payload:
    """Unpickled by a plain unpickler, this would create `target` (a harmless stand-in for real damage)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _ckpt(path, obj) -> str:
    torch.save(obj, str(path))
    return str(path)


def _rezip(src, dst, extra: dict[str, tuple[bytes, int]] | None = None, deflate: set[str] = frozenset()):
    """Copy a torch zip, deflating some members and adding others (name -> (data, compress type))."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            kind = zipfile.ZIP_DEFLATED if info.filename in deflate else zipfile.ZIP_STORED
            zout.writestr(info.filename, zin.read(info.filename), compress_type=kind)
        for name, (data, kind) in (extra or {}).items():
            zout.writestr(name, data, compress_type=kind)
    return dst


def _refusal(call) -> str:
    with pytest.raises(UserError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def _load(path):
    return load_model(ModelRef(str(path)), torch.device("cpu"), torch.float32)


def test_zip_bomb_member_is_refused_before_decompressing(tmp_path):
    good = _ckpt(tmp_path / "good.ckpt", {"state_dict": {"w": torch.zeros(4)}})
    bomb = _rezip(good, tmp_path / "bomb.ckpt", {"archive/data/9": (b"\0" * (8 << 20), zipfile.ZIP_DEFLATED)})
    assert os.path.getsize(bomb) < 100_000  # 8 MiB of zeros in a few KiB
    message = _refusal(lambda: torch_files.check_archive(bomb))
    assert "bomb.ckpt" in message and "8.0 MiB" in message and "zip bomb" in message
    assert "zip bomb" in _refusal(lambda: _load(bomb))
    assert identify(bomb).kind == "unreadable" and "zip bomb" in identify(bomb).note
    deflated_pickle = _rezip(good, tmp_path / "dp.ckpt", {}, deflate={"archive/data.pkl"})
    torch_files.check_archive(deflated_pickle)  # small and deflated: allowed


def test_forged_member_size_beyond_the_file(tmp_path):
    good = _ckpt(tmp_path / "good.pt", {"w": torch.zeros(4)})
    data = bytearray(open(good, "rb").read())
    central = data.index(b"PK\x01\x02")  # first central-directory entry (data.pkl)
    struct.pack_into("<II", data, central + 20, 0x7FFFFFF0, 0x7FFFFFF0)  # compressed, uncompressed sizes
    forged = tmp_path / "forged.pt"
    forged.write_bytes(bytes(data))
    message = _refusal(lambda: torch_files.check_archive(forged))
    assert "beyond the end" in message and "2.0 GiB" in message
    assert "beyond the end" in _refusal(lambda: load_embedding(forged))
    assert "beyond the end" in _refusal(lambda: loaders.load_generator(forged))


def test_data_pkl_over_the_limit(tmp_path, monkeypatch):
    good = _ckpt(tmp_path / "big.ckpt", {"w": torch.zeros(4)})
    monkeypatch.setattr(torch_files, "MAX_PICKLE_BYTES", 64)
    assert "data.pkl" in _refusal(lambda: torch_files.check_archive(good))


def test_truncated_zip_and_zip_without_pickle(tmp_path):
    good = _ckpt(tmp_path / "g.ckpt", {"w": torch.zeros(4)})
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(open(good, "rb").read()[:200])
    assert "truncated" in _refusal(lambda: _load(cut))
    other = tmp_path / "other.ckpt"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert "without data.pkl" in _refusal(lambda: torch_files.check_archive(other))


def test_legacy_file_whose_storages_claim_more_than_it_holds(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"emb_params": torch.zeros(1000)}, str(path), _use_new_zipfile_serialization=False)
    torch_files.check_legacy_storages(path)  # the real file passes
    data = path.read_bytes()
    i = data.index(b"M\xe8\x03")  # BININT2 1000, the storage's element count
    path.write_bytes(data[:i] + b"J\xff\xff\xff\x7f" + data[i + 3:])
    message = _refusal(lambda: load_embedding(path))
    assert "8.0 GiB" in message and "old.pt" in message


def test_payloads_never_run_in_any_container(tmp_path):
    target = tmp_path / "pwned"
    zipped = _ckpt(tmp_path / "evil.ckpt", {"state_dict": {"model.diffusion_model.x": torch.zeros(1)},
                                            "hook": Payload(str(target))})
    bare = tmp_path / "evil.pt"
    bare.write_bytes(pickle.dumps({"emb_params": Payload(str(target))}, protocol=4))
    nvidia = write_malicious_pickle(tmp_path / "evil.pkl", target)
    old = tmp_path / "evil-old.pt"
    torch.save({"x": Payload(str(target))}, str(old), _use_new_zipfile_serialization=False)
    for call in (lambda: _load(zipped), lambda: _load(bare), lambda: load_embedding(bare),
                 lambda: load_embedding(old), lambda: loaders.load_generator(zipped),
                 lambda: loaders.load_generator(nvidia), lambda: safe_pickle.load(nvidia)):
        message = _refusal(call)
        assert "refused" in message or "system" in message, message
    for path in (zipped, bare, nvidia, old):
        identify(path)  # scans opcodes only
    assert not target.exists()


def test_restricted_unpickler_allow_list_is_unchanged():
    """The StyleGAN unpickler's strictness: exactly these globals, nothing added."""
    allowed = set(safe_pickle._allowed_globals())
    expected = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
                ("_codecs", "encode"), ("copyreg", "_reconstructor"), ("torch._utils", "_rebuild_tensor_v2"),
                ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_from_type_v2"),
                ("torch", "Tensor"), ("torch.nn.parameter", "Parameter"), ("torch", "device"),
                ("torch.storage", "_load_from_bytes"), ("torch_utils.persistence", "_reconstruct_persistent_obj"),
                ("dnnlib.util", "EasyDict"), ("dnnlib", "EasyDict"), ("numpy", "ndarray"), ("numpy", "dtype")}
    expected |= {("torch", n) for n in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
                                        "int64", "uint8", "bool")}
    for core in ("numpy.core", "numpy._core"):
        expected |= {(f"{core}.multiarray", "_reconstruct"), (f"{core}.multiarray", "scalar"),
                     (f"{core}.numeric", "_frombuffer")}
    if hasattr(torch._utils, "_rebuild_parameter_with_state"):
        expected.add(("torch._utils", "_rebuild_parameter_with_state"))
    assert allowed == expected
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle.loads(pickle.dumps(Payload("/nonexistent/x")))


def test_pickle_opcode_claiming_exabytes_is_not_allocated(tmp_path):
    path = tmp_path / "claim.pkl"
    # PROTO 4, BINBYTES8 with a length of 2**60 and 3 bytes of data: a plain read(2**60) would try to allocate.
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 60) + b"abc")
    message = _refusal(lambda: safe_pickle.load(path))
    assert "truncated" in message or "corrupted" in message
    assert identify(path).kind in ("unknown", "unreadable")


def test_fifo_and_device_given_as_checkpoint_or_pickle(tmp_path):
    fifo = make_fifo(tmp_path / "pipe.ckpt")
    zero = tmp_path / "zero.pkl"
    zero.symlink_to("/dev/zero")
    for path in (fifo, zero):
        for call in (lambda: _load(path), lambda: loaders.load_generator(path), lambda: load_embedding(path)):
            assert "not a regular file" in _refusal(call)
        assert identify(path).kind == "unreadable" and "not a regular file" in identify(path).note


def test_lora_path_that_is_a_fifo_or_lies(tmp_path, capsys, tiny_sd_path):
    from aigc_desktop.engines.diffusion.lora import find_lora, read_state_dict
    from tests.hostile.conftest import one_error_line, run_cli, safetensors_bytes

    fifo = make_fifo(tmp_path / "style.safetensors")
    assert "not a regular file" in _refusal(lambda: find_lora(fifo, []))
    liar = tmp_path / "liar.safetensors"
    liar.write_bytes(safetensors_bytes(b"{}", length=1 << 50))
    assert "1.0 PiB" in _refusal(lambda: read_state_dict(liar))
    code, _, err = run_cli(capsys, "generate", "--model", tiny_sd_path, "--prompt", "x", "--lora", f"{fifo}:0.5",
                           "--out", tmp_path / "o.png")
    assert code == 2 and "not a regular file" in one_error_line(err)


def test_network_pickle_storage_claiming_more_than_its_bytes(tmp_path):
    """Plain-pickled tensors carry their storage as torch.save bytes (torch.storage._load_from_bytes); a forged
    element count inside them is refused before torch allocates it."""
    data = pickle.dumps({"w": torch.arange(1000, dtype=torch.float32)}, protocol=3)
    assert safe_pickle.loads(data)["w"].sum() == 499500  # the real file loads
    inner = data.index(b"M\xe8\x03")  # BININT2 1000 inside the storage's bytes: same length, 65535 elements
    path = tmp_path / "forged.pkl"
    path.write_bytes(data[:inner] + b"M\xff\xff" + data[inner + 3:])
    message = _refusal(lambda: safe_pickle.load(path))
    assert "forged.pkl" in message and "256.0 KiB" in message


def test_payload_in_a_diffusers_folders_bin_weights(tmp_path, tiny_sd_path):
    import shutil

    target = tmp_path / "pwned"
    folder = shutil.copytree(tiny_sd_path, tmp_path / "m")
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.unlink()
    torch.save({"conv_in.weight": Payload(str(target))}, str(folder / "unet" / "diffusion_pytorch_model.bin"))
    message = _refusal(lambda: _load(folder))
    assert "diffusion_pytorch_model.bin was refused" in message and "system" in message and not target.exists()


def test_a_huge_file_given_as_an_embedding(tmp_path):
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as fh:
        fh.truncate(5 << 30)  # sparse: 5 GiB claimed, never read
    message = _refusal(lambda: load_embedding(path))
    assert "5.0 GiB" in message and "big.safetensors" in message
