"""Command-line interface: thin typer sub-apps over the library (parse, call, print), one module per
command group; ``main`` is the console entry point."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from qverify import __version__
from qverify.cli.common import (  # noqa: F401
    Decoys,
    DoubleClick,
    Executor,
    KeyRelay,
    Method,
    NoiseModelName,
    PolicyName,
    Preset,
    Protocol,
    Relay,
    Scenario,
    VerifyProtocol,
    Weighting,
    _emit_json,
    _jax_cache,
    _progress,
    app,
    err,
    finite_float,
    log,
    out,
)
from qverify.errors import QverifyError

# Importing the command modules registers their commands, in the order `--help` lists them.
# isort: off
from qverify.cli import link, verify, reproduce, consensus, network, dra, kms  # noqa: F401
# isort: on

__all__ = ["app", "finite_float", "main"]


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only: no progress bars or info.")] = False,
) -> None:
    """qverify: verify QKD protocol circuits and reproduce the ABFT-DRA experiment."""
    if version:
        out.print(f"qverify {__version__}")
        raise typer.Exit()
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    setup_logging(level)
    from qverify.third_party_logs import route_third_party_logs

    route_third_party_logs(debug=level <= logging.DEBUG)
    err.quiet = quiet


def setup_logging(level: int) -> None:
    """Log records of ``qverify.*`` to stderr through rich, at ``level``."""
    from rich.logging import RichHandler

    root = logging.getLogger("qverify")
    root.handlers[:] = [RichHandler(console=err, show_path=False, show_time=False)]
    root.setLevel(level)
    root.propagate = False


# typer may vendor its own click: take the exception classes from typer's BadParameter.
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _usage_message(exc: Exception) -> str:
    """One line naming the option and the value, for a click/typer usage error."""
    param = getattr(exc, "param", None)
    message = str(getattr(exc, "message", exc)).removeprefix("Value error, ").rstrip(".")
    if isinstance(exc, typer.BadParameter) and param is not None and getattr(param, "name", None):
        return f"{param.name} = {message}" if message.startswith("'") else f"{param.name}: {message}"
    return str(exc.format_message()) if hasattr(exc, "format_message") else message


def main() -> None:
    """Console entry point: bad input prints one line and exits with status 2."""
    import signal

    from qverify.interrupts import terminate

    # SIGTERM unwinds like Ctrl-C: finally blocks stop worker processes and keep what has finished.
    signal.signal(signal.SIGTERM, terminate)
    try:
        rv = app(standalone_mode=False)
    except QverifyError as exc:
        err.quiet = False
        err.print(f"error: {exc}", highlight=False, soft_wrap=True, markup=False, emoji=False)
        raise SystemExit(2) from None
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            ctx = getattr(exc, "ctx", None)
            out.print(ctx.get_help() if ctx else "", markup=False, highlight=False)
            raise SystemExit(0) from None
        err.quiet = False
        err.print(f"error: {_usage_message(exc)}", highlight=False, soft_wrap=True, markup=False, emoji=False)
        raise SystemExit(2) from None
    except typer.Abort:
        err.quiet = False
        err.print("aborted", highlight=False)
        raise SystemExit(130) from None
    raise SystemExit(rv if isinstance(rv, int) else 0)
