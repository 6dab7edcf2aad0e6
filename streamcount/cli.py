"""The one ``streamcount`` command and its subcommands.

Each subcommand lives in its own module exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only to build the parser; anything heavy (torch,
onnxruntime, h5py) is imported inside ``run`` so ``streamcount --help`` is fast and the runtime
never needs torch.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence

from streamcount import __version__
from streamcount.errors import EXIT_INTERRUPTED, OutputError, StreamcountError

# name -> module; the order is the order shown in --help.
COMMANDS: dict[str, str] = {
    "prepare": "streamcount.training.prepare",
    "train": "streamcount.training.train_cli",
    "evaluate": "streamcount.training.evaluate_cli",
    "calibrate": "streamcount.training.calibrate",
    "average": "streamcount.training.average",
    "export": "streamcount.exports.cli",
    "count": "streamcount.commands.count",
    "run": "streamcount.commands.run",
    "fleet": "streamcount.commands.fleet",
    "zones": "streamcount.commands.zones",
    "frames": "streamcount.commands.frames",
    "annotate": "streamcount.commands.annotate",
    "bench": "streamcount.commands.bench",
    "info": "streamcount.commands.info",
}

logger = logging.getLogger("streamcount")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="streamcount",
        description="Count people and objects in images and live video with density maps.",
    )
    parser.add_argument("--version", action="version", version=f"streamcount {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    # the same two flags after the subcommand (`streamcount run -v`); SUPPRESS keeps a value
    # given before the subcommand when they are absent after it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        # no try/except: a command module that fails to import is a bug, reported as one, not
        # a silently missing subcommand (their heavy imports happen inside run())
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[common])
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _setup_logging(verbose: int) -> None:
    """Our packages log at INFO (DEBUG with -v) to stderr; libraries only warnings."""
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(
        console=Console(stderr=True), show_time=False, show_path=False, markup=False,
        rich_tracebacks=False,
    )  # fmt: skip
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("streamcount").setLevel(level)  # streamcount.training, .exports included
    if not verbose:
        # OpenCV prints its own "[ERROR:0@0.1] ..." lines (a missing webcam, a failed open)
        # before our one-line error, which says the same with what to do; -v shows them.
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    try:
        parser = build_parser()
    except ImportError as exc:  # a broken install or a shadowing package: one line, not a trace
        print(f"internal error: cannot load a streamcount command ({exc}); reinstall with "
              "pip install -e . (a local package named like one of ours can shadow it)",
              file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    _setup_logging(args.verbose)
    try:
        return int(args._module.run(args) or 0)
    except StreamcountError as exc:
        if args.debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `streamcount run --csv - | head`: the reader had enough
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except OSError as exc:  # not wrapped by a command: most often a full disk or a lost output
        if args.debug:
            raise
        where = exc.filename or "standard output"
        print(f"error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        write_errors = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}
        return OutputError.exit_code if exc.errno in write_errors else 1
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback "
              "and please report it)", file=sys.stderr)
        return 1
