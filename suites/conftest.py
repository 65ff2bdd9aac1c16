"""Fixtures the suite's own modules share."""

import pytest


@pytest.fixture(scope="session")
def torch_before_pytester():
    """torch, imported before pytester snapshots sys.modules. Its in-process runs drop the modules first
    imported in them when they end, and torch's C extension cannot be loaded a second time in one process.
    Ask for it before ``pytester``."""
    import torch

    return torch
