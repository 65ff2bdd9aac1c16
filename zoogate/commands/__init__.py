"""One module per `zoogate` subcommand. Each defines ``register(subparsers)``, which adds its parser and
sets ``func`` (args -> exit code) as the parser default. cli.py discovers them."""
