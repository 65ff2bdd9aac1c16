"""Runners: one small interface (hardware.base.Runner), one module per backend.

Vendor SDKs are imported inside the runner that needs them, never at import time of this package.
"""
