"""pytest plugin: the rootdir and config file as if pytest had known zoogate's options from the start.

pytest picks its rootdir and config file before any plugin has registered options, so in
``pytest --model-dir /models/om`` the folder ``/models/om`` is taken for a test path: the rootdir becomes
that folder, the checkout's ``[tool.pytest.ini_options]`` (testpaths, addopts, filterwarnings) is not
read, and ``.pytest_cache`` would be written into the user's model folder. ``--model-dir=/models/om``
never had the problem. Once the plugins are registered (this hook runs before the initial conftests are
loaded), the setup is determined again from the paths that really are test paths and, where it differs,
the one pytest would have chosen with the options known is put in place. This reaches into pytest's
private Config fields; suites/test_readme_commands.py runs the README's commands both ways so that a
pytest release that moves them fails loudly here.
"""

from __future__ import annotations

import copy

import pytest
from _pytest.config.findpaths import determine_setup


def _setup(config: pytest.Config, ns) -> tuple:
    return determine_setup(inifile=ns.inifilename, override_ini=ns.override_ini, args=ns.file_or_dir,
                           rootdir_cmd_arg=ns.rootdir or None, invocation_dir=config.invocation_params.dir)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    config = early_config
    old_addopts = list(config.getini("addopts"))
    # args still begin with the addopts of the config file chosen first: take them off to see the user's own
    user_args = args[len(old_addopts):] if args[:len(old_addopts)] == old_addopts else list(args)
    ns = parser.parse_known_args(user_args, namespace=copy.copy(config.option))
    rootpath, inipath, inicfg, ignored = _setup(config, ns)
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    config._rootpath, config._inipath, config._inicfg = rootpath, inipath, inicfg
    config._ignored_config_files = ignored
    config._inicache.clear()
    parser.extra_info["rootdir"] = str(rootpath)
    parser.extra_info["inifile"] = str(inipath)
    args[:] = list(config.getini("addopts")) + user_args       # the list pytest goes on to parse
    config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if ns.confcutdir is None:                 # pytest derives it from the config file: derive it again
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
