"""The ``superposition`` command-line tool.

Each sub-command lives in a private module ``superposition._cli_<name>`` that defines
``add_parser(subparsers)``; the parser it adds sets ``run=<function(args) -> int>``.
Bad arguments (argparse's or a library ``ValueError``) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("embed", "uand", "width", "circuit", "deep", "sweep", "export")


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

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
    missing = [
        flag for dest, flag in getattr(args, "required_flags", ()) if getattr(args, dest) is None
    ]
    if missing:
        print(
            f"superposition {args.command}: error: the following arguments are required: "
            + ", ".join(missing),
            file=sys.stderr,
        )
        return 2
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:
        print(f"superposition {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"superposition {args.command}: interrupted", file=sys.stderr)
        return 130


class _Deprecated(argparse.Action):
    """An old flag kept for one release: sets the new flag's value and warns on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: object):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        print(
            f"{parser.prog}: warning: {option_string} is deprecated and will be removed in the "
            f"next release; use {self.new}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_renamed(
    parser: argparse.ArgumentParser,
    flag: str,
    old: str,
    *,
    required: bool = False,
    **kwargs: object,
) -> None:
    """Add ``flag`` and its deprecated alias ``old`` (same destination, same type).

    The alias is hidden from ``--help`` and prints a one-line warning on stderr when used.
    ``required`` is checked after parsing (by :func:`main`), so either spelling satisfies it.
    """
    dest = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=dest, **kwargs)  # type: ignore[arg-type]
    parser.add_argument(
        old,
        dest=dest,
        action=_Deprecated,
        new=flag,
        type=kwargs.get("type"),
        choices=kwargs.get("choices"),
        help=argparse.SUPPRESS,
    )
    if required:
        flags = list(parser.get_default("required_flags") or [])
        parser.set_defaults(required_flags=[*flags, (dest, flag)])


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
