"""pytest plugins of the suite; the root conftest.py loads every module in this package."""

import pkgutil

PLUGIN_MODULES = sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
