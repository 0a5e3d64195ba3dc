"""Shared rendering: consoles for human text and JSON, and the no-traceback guard."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from dicommedia.errors import MediaError


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


# Human text goes to stderr so that --json output on stdout stays machine-readable (SPEC 2).
err_console: Any = _LazyConsole(stderr=True, highlight=False)
out_console: Any = _LazyConsole(highlight=False)


def emit_json(data: Any) -> None:
    """Print a JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str) -> NoReturn:  # noqa: F821
    """Print a one-line error and exit 1."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise SystemExit(1)


def run_guarded(command: Callable[..., Any]) -> None:
    """Run the click command; bad input, bad discs and dead peers end in one line and exit 1, never a traceback."""
    try:
        command(standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Abort:
        err_console.print("aborted")
        raise SystemExit(1) from None
    except MediaError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was written")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:  # the last guard: a bug must still not print a traceback to a user
        if os.environ.get("DICOMMEDIA_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set DICOMMEDIA_DEBUG=1 for details)")
