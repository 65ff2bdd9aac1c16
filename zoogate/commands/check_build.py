"""`zoogate check-build FILE.yaml [--model M]`: a vamc build config against the model's documented pipeline.

Exit 0 when it conforms, 1 on a finding (a frontend shape, a calibration preprocessing or a calibration
set that is not the documented one), 2 when the file cannot be read."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("check-build", help="check a vamc build config against the documented pipeline",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="FILE.yaml", help="a vamc build config (build_in/build/*.yaml)")
    p.add_argument("--model", help="registry model the build is for (default: from the config's name:, e.g. "
                                   "timm_inceptionv4_int8 -> inception_v4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate import baselines
    from zoogate.buildcheck import check_build
    from zoogate.errors import ZoogateError
    from zoogate.vamc import BUILD_MODELS, load_build_config, model_for

    config = load_build_config(args.config)
    model = args.model or model_for(config)
    if model is None:
        raise ZoogateError(f"name {config.name!r} is not a build zoogate knows ({', '.join(sorted(BUILD_MODELS))}): "
                           "pass --model M", config.path)
    baselines.model(model)
    result = check_build(config, model)
    print(f"zoogate check-build: {config.path}: build {config.name} ({config.precision}) for {model}, "
          f"deploy_weights/{config.name}/mod")
    for f in result.findings:
        print(f"  FINDING  {f.line()}")
    for note in result.notes:
        print(f"  note     {note}")
    print(f"  {'conforms' if result.conforms else f'{len(result.findings)} finding(s)'}")
    return 0 if result.conforms else 1
