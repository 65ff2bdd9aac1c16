"""Root conftest: the suite's options, markers, fixtures and report hooks live in zoogate.plugin.*."""

from zoogate.plugin import PLUGIN_MODULES

pytest_plugins = PLUGIN_MODULES
