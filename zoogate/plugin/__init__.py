"""zoogate's pytest plugins, loaded through the ``pytest11`` entry point (pyproject.toml).

pytest registers this package for any rootdir and working directory; ``pytest_plugins`` below then
registers every module in it, so options, markers, fixtures and report hooks exist whatever pytest picked
as its rootdir. There is no root conftest.py.
"""

import pkgutil

PLUGIN_MODULES = sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))

pytest_plugins = PLUGIN_MODULES
