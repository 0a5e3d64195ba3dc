"""Shared rendering: consoles for human text and JSON, and the no-traceback guard."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from dicommedia.errors import MediaError, one_line


class _LazyConsole:
    """A rich Console made on first use: commands that print little start faster."""

    def __init__(self, **options: Any):
        self._options = options
        self._console = None

    @property
    def console(self) -> Any:
        """The rich Console itself (for APIs that need the real object)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    def __enter__(self) -> Any:
        return self.console.__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self.console.__exit__(*exc)


def escape(text: str) -> str:
    """Text made safe inside rich markup (rich loads only when something is shown with it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


# Human text goes to stderr so that --json output on stdout stays machine-readable (SPEC 2). Text read from media
# (names, descriptions) is shown as written: no ":code:" emoji replacement (nor the loading of its table).
err_console: Any = _LazyConsole(stderr=True, highlight=False, emoji=False)
out_console: Any = _LazyConsole(highlight=False, emoji=False)


class _Session:
    """What the error paths must know of the running command: JSON wanted, and whether a document was printed."""

    json_errors = False
    emitted = False


def emit_json(data: Any) -> None:
    """Print a JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    _Session.emitted = True


def _emit_error(code: str, message: str, path: str | None) -> None:
    """SPEC 2.4: with ``--json``, a command that cannot go on prints ``{"error": {...}}`` on stdout (once)."""
    if _Session.json_errors and not _Session.emitted:
        emit_json({"error": {"code": code, "message": message, "path": path}})


def fail(message: str, code: str = "failed", path: str | None = None, exit_code: int = 1) -> NoReturn:
    """Print a one-line error (and its JSON form with ``--json``) and exit 1."""
    _emit_error(code, message, path)
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    raise SystemExit(exit_code)


def _wants_json(argv: list[str]) -> bool:
    """True when ``--json`` is among the options (before a ``--``)."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def run_guarded(command: Callable[..., Any], argv: list[str] | None = None) -> None:
    """Run the click command; bad input, bad discs and dead peers end in one line and exit 1, never a traceback."""
    argv = sys.argv[1:] if argv is None else argv
    _Session.json_errors, _Session.emitted = _wants_json(argv), False
    try:
        code = command(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        _emit_error("usage" if exc.exit_code == 2 else "failed", exc.format_message(), None)
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted()
        fail("aborted (end of input)", code="aborted")
    except MediaError as exc:
        fail(str(exc), code=exc.code, path=exc.subject)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit:
        raise
    except Exception as exc:  # the last guard: a bug must still not print a traceback to a user
        if os.environ.get("DICOMMEDIA_DEBUG"):
            raise
        fail(
            f"internal error: {type(exc).__name__}: {one_line(exc)} (set DICOMMEDIA_DEBUG=1 for details)",
            code="internal-error",
        )
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _interrupted() -> NoReturn:
    """Ctrl-C: the command cleaned up on its way out (outputs appear whole or not at all); exit 130 (SPEC 2)."""
    fail("interrupted; nothing was written", code="interrupted", exit_code=130)
