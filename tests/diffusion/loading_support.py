"""Shared by the test_loading* modules: the CPU device and a one-thread torch for each module."""

from __future__ import annotations

import pytest
import torch

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a small shared machine more threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
