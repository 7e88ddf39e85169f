"""The ``superposition`` command-line tool.

Each sub-command lives in a private module ``superposition._cli_<name>`` that defines
``add_parser(subparsers)``; the parser it adds sets ``run=<function(args) -> int>``.
Bad arguments (argparse's or a library ``ValueError``) print one line and exit with code 2;
so does a request whose estimated memory exceeds what the machine has available
(:mod:`superposition.memory`, checked before anything is allocated) and an output path that
cannot be written. A closed standard output (``superposition … | head``) ends the command
quietly with exit code 141, like a Unix tool killed by ``SIGPIPE``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

COMMANDS = (
    "embed",
    "uand",
    "width",
    "circuit",
    "deep",
    "capacity",
    "sweep",
    "export",
    "benchmark",
)
EXIT_BROKEN_PIPE = 141
"""Exit code when standard output is closed early: 128 + SIGPIPE, as a shell reports a Unix tool
killed by the signal."""


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: …)`` after an option's help, unless there is nothing to show.

    No default is printed for required options, flags, ``None`` defaults (the help says what
    happens then) or help texts that already name their default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.required
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or isinstance(action, argparse._StoreTrueAction)
            or "default" in text
        ):
            return text
        return super()._get_help_string(action)


class _RawDescriptionDefaultsFormatter(_DefaultsFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`_DefaultsFormatter` that keeps the description's line breaks."""


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, exit code 2, and whose help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        fmt = kwargs.get("formatter_class", argparse.HelpFormatter)
        if fmt is argparse.RawDescriptionHelpFormatter:
            kwargs["formatter_class"] = _RawDescriptionDefaultsFormatter
        elif fmt is argparse.HelpFormatter:
            kwargs["formatter_class"] = _DefaultsFormatter
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _OneLineParser(
        prog="superposition",
        description="Constructions from 'Mathematical Models of Computation in Superposition'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        parser_class=_OneLineParser,
        help="`superposition COMMAND --help` describes each",
    )
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
    try:
        try:
            args = parser.parse_args(argv)
        finally:  # --help and --version print, then exit: their output must reach the pipe now
            sys.stdout.flush()
    except BrokenPipeError:
        return _closed_stdout()
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
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _closed_stdout()
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


def _closed_stdout() -> int:
    """The reader of standard output went away: stop quietly, as Unix tools do.

    Standard output is pointed at ``os.devnull`` so that the interpreter's final flush of the
    unwritable buffer raises nothing.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a file (e.g. captured)
        pass
    return EXIT_BROKEN_PIPE


def require_memory(nbytes: float, what: str) -> None:
    """Refuse (``ValueError``: one line, exit code 2) a request that would not fit in memory."""
    from .memory import check_fits

    check_fits(nbytes, what)


def check_output_path(path: str, flag: str = "--out") -> None:
    """``ValueError`` unless ``path`` can be written: its folder exists and is writable.

    Checked before anything is built, so an impossible path costs nothing and leaves nothing.
    """
    target = Path(path)
    parent = target.parent
    if not parent.exists():
        raise ValueError(f"{flag} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: {parent} is not a folder")
    if target.is_dir():
        raise ValueError(f"{flag} {path}: is a folder, expected a file name")
    try:  # a real probe: permission bits say nothing to root, or on a read-only file system
        with tempfile.TemporaryFile(dir=parent, prefix=".superposition-probe-"):
            pass
    except OSError as exc:
        raise ValueError(
            f"{flag} {path}: cannot write in the folder {parent} ({exc.strerror or exc})"
        ) from None


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
