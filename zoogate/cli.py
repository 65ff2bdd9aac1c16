"""The `zoogate` command: one subcommand module per verb in zoogate.commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from zoogate import __version__, commands
from zoogate.errors import ZoogateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoogate", description="Conformance gates for deployed image classifiers.")
    parser.add_argument("--version", action="version", version=f"zoogate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ZoogateError as exc:
        print(f"zoogate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zoogate {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
