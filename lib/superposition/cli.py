"""The ``superposition`` command-line tool.

Each sub-command lives in a private module ``superposition._cli_<name>`` that defines
``add_parser(subparsers)``; the parser it adds sets ``run=<function(args) -> int>``.
Bad arguments (argparse's or a library ``ValueError``) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("embed", "uand", "width", "circuit", "deep", "sweep", "export", "benchmark")


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _OneLineParser(
        prog="superposition",
        description="Constructions from 'Mathematical Models of Computation in Superposition'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"superposition._cli_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"superposition._cli_{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:
        print(f"superposition {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"superposition {args.command}: interrupted", file=sys.stderr)
        return 130


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def nonneg_int(text: str) -> int:
    """argparse type: an integer ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
