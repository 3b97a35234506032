"""Test-wide guards: no network, no real user folders, no leaked threads; shared tiny-model fixtures."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
import weakref

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import aigc_desktop  # noqa: E402,F401 - sets the offline flags before any HF import
import pytest  # noqa: E402

# ------------------------------------------------------------------------------------------ network


class NetworkAccess(AssertionError):
    pass


def _is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in ("localhost", "", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_attempts: list[str] = []


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any non-loopback connect or DNS lookup raises and fails the test (even if the caller swallows it)."""
    _attempts.clear()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check_address(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if not _is_local(host):
                _attempts.append(f"connect to {address!r}")
                raise NetworkAccess(f"Test tried to open a network connection to {address!r}")

    def guarded_connect(self, address):
        check_address(self, address)
        return real_connect(self, address)

    def guarded_connect_ex(self, address):
        check_address(self, address)
        return real_connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _attempts.append(f"DNS lookup of {host!r}")
            raise NetworkAccess(f"Test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def guarded_gethostbyname(host):
        if not _is_local(host):
            _attempts.append(f"DNS lookup of {host!r}")
            raise NetworkAccess(f"Test tried to resolve {host!r}")
        return "127.0.0.1"

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", guarded_gethostbyname)
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda h: (_ for _ in ()).throw(NetworkAccess(h))
                        if not _is_local(h) else ("localhost", [], ["127.0.0.1"]))
    yield
    if _attempts:
        pytest.fail("Network access attempted: " + "; ".join(_attempts), pytrace=False)


# ------------------------------------------------------------------------------------------ folders


@pytest.fixture(scope="session")
def _resources_without_models(tmp_path_factory):
    """The bundled default models (resources/models) stay out of tests' model lists: a resources folder that
    links everything else (tokenizer, family configs). Tests of the defaults use the `bundled_models` fixture.
    Made once per session, outside each test's tmp_path, so tests can assert on what their tmp_path holds."""
    from aigc_desktop.core.paths import resources_dir

    real_resources = resources_dir()
    resources = tmp_path_factory.mktemp("resources")
    for entry in real_resources.iterdir() if real_resources.is_dir() else ():
        if entry.name != "models":
            (resources / entry.name).symlink_to(entry)
    return resources


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch, _resources_without_models):
    """Tests never read or write the real user config or data folders."""
    config = tmp_path / "_config"
    data = tmp_path / "_data"
    monkeypatch.setenv("AIGC_DESKTOP_CONFIG_DIR", str(config))
    monkeypatch.setenv("AIGC_DESKTOP_DATA_DIR", str(data))
    monkeypatch.setenv("AIGC_DESKTOP_RESOURCES_DIR", str(_resources_without_models))
    from aigc_desktop.core import hashing

    hashing.clear_memory_cache()
    yield {"config": config, "data": data}
    hashing.clear_memory_cache()


@pytest.fixture
def bundled_models(monkeypatch):
    """The real resources folder, default models included; returns resources/models."""
    monkeypatch.delenv("AIGC_DESKTOP_RESOURCES_DIR")
    from aigc_desktop.core.paths import resources_dir

    return resources_dir() / "models"


# ------------------------------------------------------------------------------------------ threads

_started_qthreads: "weakref.WeakSet" = weakref.WeakSet()


def _patch_qthread_start() -> None:
    try:
        from PySide6.QtCore import QThread
    except ImportError:  # the layers test runs without Qt
        return
    if getattr(QThread.start, "_aigc_tracked", False):
        return
    original = QThread.start

    def start(self, *args, **kwargs):
        _started_qthreads.add(self)
        return original(self, *args, **kwargs)

    start._aigc_tracked = True
    QThread.start = start


_patch_qthread_start()


@pytest.fixture(autouse=True)
def no_thread_leaks():
    """Fail a test that leaves a QThread or a non-daemon Python thread running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        running_q = [t for t in list(_started_qthreads) if _qthread_running(t)]
        extra = [t for t in threading.enumerate()
                 if t not in before and t.is_alive() and not t.daemon and not isinstance(t, threading._DummyThread)]
        if not running_q and not extra:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    names = [f"QThread {t.objectName() or type(t).__name__}" for t in running_q] + [f"thread {t.name}" for t in extra]
    for t in running_q:  # stop them so one leak does not cascade into later tests
        stop = getattr(t, "stop", None)
        if stop:
            stop()
        t.quit()
        t.wait(5000)
    pytest.fail("Test left threads running: " + ", ".join(names), pytrace=False)


def _qthread_running(t) -> bool:
    try:
        return t.isRunning()
    except RuntimeError:  # C++ object already deleted
        return False


# ------------------------------------------------------------------------------------------ models


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory):
    """A tiny SD-1.x diffusers folder (random weights, byte-level tokenizer), built once per session."""
    from aigc_desktop.testing.tiny import save_tiny_sd

    return save_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")
