"""Sinks: where Results go. Each sink is a context manager consuming :class:`Result` records.

``open()`` (or ``with``) checks the destination and fails with one :class:`OutputError` line
before any frame is processed; ``write(result)`` is called once per processed frame, in order,
from the output stage; ``close()`` is always called (also on Ctrl-C and SIGTERM) and leaves
every file complete and readable.

Example:
    >>> class Printer(Sink):
    ...     def write(self, result):
    ...         print(result.count)
    >>> with Printer() as s:
    ...     pass
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from streamcount.errors import OutputError
from streamcount.frames import Result


class Sink:
    """Base sink: override :meth:`write` and, as needed, :meth:`open` and :meth:`close`.

    Attributes:
        needs_overlay: True when the sink uses ``result.annotated`` (the output stage then
            draws the overlay once per frame for all sinks).
    """

    needs_overlay = False

    def open(self) -> None:
        """Check and open the destination."""

    def write(self, result: Result) -> None:  # pragma: no cover - overridden
        """Consume one result."""

    def close(self) -> None:
        """Flush and close; must be safe to call twice."""

    def __enter__(self) -> Sink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_writable(path: Path, what: str = "output") -> None:
    """Raise :class:`OutputError` unless ``path`` can be created (its folder exists, is writable).

    Example:
        >>> check_writable(Path("/nonexistent-dir/x.csv"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        streamcount.errors.OutputError: cannot write output /nonexistent-dir/x.csv: ...
    """
    if is_stdout(path):
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"cannot write {what} {path}: it is a folder; give a file name")
    if not parent.is_dir():
        raise OutputError(f"cannot write {what} {path}: folder {parent} does not exist; "
                          "create it first")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {what} {path}: permission denied; choose another path")


class TextFileSink(Sink):
    """A sink writing one text file, line-buffered; subclasses format the lines.

    Attributes:
        kind: What the file is, for error messages (``"CSV"``).
        rows: Lines written so far.
        append: Add to an existing file instead of replacing it (resuming a run).
    """

    kind = "text"

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self.append = append
        self.fh: TextIO | None = None
        self.rows = 0
        self._fresh = False

    def open(self) -> None:
        """Create (or append to) the file; one :class:`OutputError` line when it cannot.

        ``-`` is standard output (kept open at close); pipes and ``/dev/stdout`` work too.
        """
        try:
            self._fresh = not self.append or self.path.stat().st_size == 0
        except OSError:
            self._fresh = True
        self.fh = open_text(self.path, self.kind, self.append)

    @property
    def fresh(self) -> bool:
        """True when the open file was empty (a header is due); no seeking, so pipes work."""
        return self.fh is not None and self._fresh and self.rows == 0

    def close(self) -> None:
        """Close the file (standard output is only flushed); safe to call twice."""
        if self.fh is not None:
            if is_stdout(self.path):
                self.fh.flush()
            else:
                self.fh.close()
            self.fh = None


def same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file (symlinks and ``..`` resolved; hard links too)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(inputs: list[tuple[str, Path]], outputs: dict[str, Path]) -> None:
    """Refuse outputs that would overwrite an input or each other, before any file is opened.

    Args:
        inputs: ``(what, path)`` of each input (``("source", Path("clip.mp4"))``).
        outputs: The flag that writes it (``"--csv"``) -> its path; ``-`` (stdout) is skipped.

    Raises:
        OutputError: one line naming both.

    Example:
        >>> check_outputs([("source", Path("clip.mp4"))], {"--csv": Path("clip.mp4")})
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        streamcount.errors.OutputError: --csv clip.mp4 is the source clip.mp4: ...
    """
    outs = [(flag, Path(p)) for flag, p in outputs.items() if p is not None and not is_stdout(p)]
    for flag, path in outs:
        for what, src in inputs:
            if src is not None and same_file(path, Path(src)):
                raise OutputError(f"{flag} {path} is the {what} {src}: writing it would destroy "
                                  "it; choose another name")
    for i, (flag_a, a) in enumerate(outs):
        for flag_b, b in outs[i + 1:]:
            if same_file(a, b):
                raise OutputError(f"{flag_a} and {flag_b} both write {a}: give each its own file")


def unique_slugs(slugs: dict[str, str]) -> dict[str, str]:
    """Per-source file suffixes made unique: ``cam``, ``cam_2``... (``a/cam.mp4`` and
    ``b/cam.avi`` must not write one ``out_cam.mp4``).

    Example:
        >>> unique_slugs({"a/cam.mp4": "cam", "b/cam.avi": "cam", "x": "x"})
        {'a/cam.mp4': 'cam', 'b/cam.avi': 'cam_2', 'x': 'x'}
    """
    seen: dict[str, int] = {}
    out = {}
    for name, sl in slugs.items():
        n = seen.get(sl, 0) + 1
        seen[sl] = n
        out[name] = sl if n == 1 else f"{sl}_{n}"
    return out


def is_stdout(path: str | Path | None) -> bool:
    """True for ``-``, the conventional name of standard output."""
    return path is not None and str(path) == "-"


def open_text(path: Path, what: str, append: bool = False) -> TextIO:
    """Open ``path`` for writing (or appending) text, line-buffered, or raise one
    :class:`OutputError` line. ``-`` gives standard output."""
    if is_stdout(path):
        import sys

        return sys.stdout
    check_writable(path, what)
    try:
        return path.open("a" if append else "w", encoding="utf-8", newline="", buffering=1)
    except OSError as exc:
        raise OutputError(f"cannot write {what} {path}: {exc.strerror}") from None


def suffixed(path: Path, suffix: str) -> Path:
    """``out.mp4`` + ``cam0`` -> ``out_cam0.mp4`` (one file per source).

    Example:
        >>> suffixed(Path("o/out.mp4"), "cam0").as_posix()
        'o/out_cam0.mp4'
    """
    return path.with_name(f"{path.stem}_{suffix}{path.suffix}")


__all__ = ["Sink", "check_outputs", "check_writable", "is_stdout", "open_text", "same_file",
           "suffixed", "unique_slugs"]


def write_all(sinks: Sequence[Sink], res: Result) -> None:
    """Hand ``res`` to every sink; a failing write becomes one :class:`OutputError` line."""
    for sink in sinks:
        try:
            sink.write(res)
        except BrokenPipeError:  # the reader of a pipe went away (`| head`): stop quietly
            raise
        except OSError as exc:  # full disk, removed folder
            where = getattr(sink, "path", type(sink).__name__)
            raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from exc
