"""Start-up: the command list comes from the CLI's mapping, without importing any command module or pydicom."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from dicommedia.cli import _COMMANDS, cli

# Runs the CLI in a fresh interpreter, then reports which heavy modules --help pulled in.
_PROBE = """
import sys
from dicommedia.cli import run
code = run()
heavy = [m for m in ("pydicom", "numpy", "pynetdicom", "pycdlib", "rich") if m in sys.modules]
commands = [m for m in sys.modules if m.startswith("dicommedia.cli.") and m != "dicommedia.cli.render"]
print("LOADED", heavy + commands, file=sys.stderr)
sys.exit(code)
"""


def _probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_help_lists_every_command_without_loading_them():
    done = _probe("--help")
    assert done.returncode == 0, done.stderr
    for name in _COMMANDS:
        assert f"\n  {name} " in done.stdout, f"{name} missing from --help"
    assert "LOADED []" in done.stderr, done.stderr


def test_a_command_help_loads_only_that_command():
    done = _probe("profiles", "--help")
    assert done.returncode == 0, done.stderr
    assert "dicommedia.cli.profiles" in done.stderr
    for other in ("create", "read", "validate"):
        assert f"dicommedia.cli.{other}'" not in done.stderr


def test_mapping_names_real_commands():
    for name, (module, short_help) in _COMMANDS.items():
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        assert short_help and "\n" not in short_help
        assert cli.get_command(click.Context(cli), name) is command


def test_unknown_command_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "dicommedia", "burnn"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 2
    assert "burnn" in done.stderr
