"""pytest plugin: freeze the garbage collector's view of the heap once collection is done.

torch, timm and onnx leave a few million long-lived objects; every full collection walks them again,
and pytest runs several at session end (to report unraisable exceptions): about a second per session,
paid again by every pytest the suite starts in a subprocess. ``gc.freeze()`` moves what exists after
collection out of the collector's generations; objects the tests create are collected as before.
"""

import gc

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()
