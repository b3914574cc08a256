"""What every command shares: the typer app, consoles, option parsers, choice enums, progress bars."""

from __future__ import annotations

import json
import logging
import math
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

app = typer.Typer(
    help="qverify: verify QKD protocol circuits and reproduce the ABFT-DRA experiment.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
log = logging.getLogger("qverify")


def finite_float(text: str) -> float:
    """Option parser: a finite float; ``inf`` and ``nan`` are refused (main() names the option)."""
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{text!r} is outside the allowed range: a finite number")
    return x


# Choices are spelled out here so that `--help` and shell completion need no heavy import (tests/test_cli.py
# checks each against the library's own tuple). As StrEnums, typer lists them in --help and completes them
# in the shell, and their members are plain strings to the library.


class Protocol(StrEnum):
    MDI = "mdi"
    BB84 = "bb84"


class Decoys(StrEnum):
    INFINITE = "infinite"
    VACUUM_WEAK = "vacuum+weak"


class Preset(StrEnum):
    LCQ2012 = "lcq2012"
    GYS2004 = "gys2004"
    LIM2014 = "lim2014"


class MdiEstimator(StrEnum):
    ANALYTIC = "analytic"
    LP = "lp"


class BlockKind(StrEnum):
    PULSES = "pulses"
    N_X = "n_x"


class DoubleClick(StrEnum):
    SQUASH = "squash"
    DISCARD = "discard"


DoubleClickOption = Annotated[
    DoubleClick,
    typer.Option(
        help="BB84 double clicks: squash (a random bit; what the security proofs assume) or discard "
        "(what event simulators do; not a secure post-processing choice)."
    ),
]
DeadTimeOption = Annotated[
    int,
    typer.Option(
        help="Detector dead time: pulse slots each detector stays blind after a click (integer 0–200 for "
        "BB84; 0–10 for MDI-QKD, whose relay has four detectors). Beyond 10 MDI-QKD links are refused."
    ),
]


TestLevelsOption = Annotated[
    str | None,
    typer.Option(
        help="Test rounds the agent chooses per link and epoch, as multiples of the verification rounds "
        "(10 000), comma-separated, e.g. 0.5,1,2: adds a 'tests' action branch (more rounds cost key and "
        "tighten the abort bound; each level > 0 and level × 10 000 ≥ 3). Default: no such branch, every link "
        "runs 10 000."
    ),
]


def parse_test_levels(text: str | None) -> tuple[float, ...] | None:
    """``--test-levels``: comma-separated numbers (``None``: no tests branch); SimConfig checks their range.

    >>> parse_test_levels("0.5, 1,2")
    (0.5, 1.0, 2.0)
    >>> parse_test_levels(None) is None
    True
    """
    from qverify.errors import ParameterError

    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ParameterError("test_levels", text, "comma-separated numbers, e.g. 0.5,1,2") from None


def network_link(double_click: str = "squash", dead_time_slots: int = 0) -> Any:
    """The network's link physics (LCQ 2012 preset) under the given detector conventions."""
    from qverify.physics.params import LCQ_2012

    return LCQ_2012.replace(double_click=str(double_click), dead_time_slots=dead_time_slots)


class Method(StrEnum):
    AUTO = "auto"
    EXACT = "exact"
    SAMPLED = "sampled"
    STIM = "stim"


class VerifyProtocol(StrEnum):
    GHZ = "ghz"
    QSS = "qss"
    BSM = "bsm"
    QDS = "qds"


class NoiseModelName(StrEnum):
    LOCAL = "local"
    GLOBAL = "global"


class Executor(StrEnum):
    LOCAL = "local"
    RAY = "ray"


class Weighting(StrEnum):
    ABFT = "abft"
    EQUAL = "equal"


class AttackMethod(StrEnum):
    FUZZ = "fuzz"
    TWINS = "twins"


class Signatures(StrEnum):
    ED25519 = "ed25519"
    IDEAL = "ideal"


class Relay(StrEnum):
    INTERCEPT_RESEND = "intercept_resend"
    HONEST = "honest"
    INTERCEPT_RESEND_Z = "intercept_resend_z"
    INTERCEPT_RESEND_X = "intercept_resend_x"
    Z_MEASURE = "z_measure"
    INJECT = "inject"


class KeyRelay(StrEnum):
    SINGLE = "single"
    XOR = "xor"
    SHAMIR = "shamir"


class Scenario(StrEnum):
    FAULT_FREE = "fault_free"
    EQUIVOCATING_LEADER = "equivocating_leader"
    SILENT_HEAVY = "silent_heavy"
    LIARS = "liars"
    SLANDERERS = "slanderers"
    SLEEPER = "sleeper"
    VOTE_DELAY = "vote_delay"
    AMNESIA = "amnesia"
    WEIGHT_RACE = "weight_race"
    DUPLICATE_VOTES = "duplicate_votes"
    PARTITION = "partition"
    DROPS = "drops"
    F_PLUS_ONE = "f_plus_one"
    SLOW_LEADER = "slow_leader"
    NULL_CHURN = "null_churn"
    CENSOR = "censor"
    FLOOD = "flood"


class PolicyName(StrEnum):
    BASELINE = "baseline"
    PBFT_EQUAL = "pbft_equal"
    ABFT = "abft"


def _progress(unit: str = "", transient: bool = True) -> Progress:
    """The progress bar every long command shows (on stderr, so --json output stays clean)."""
    counter = "{task.completed}/{task.total}" + (f" {unit}" if unit else "")
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn(counter), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=transient,
    )  # fmt: skip


def _jax_cache() -> None:
    from qverify.jax_cache import enable_compilation_cache

    folder = enable_compilation_cache()
    log.info("JAX compilation cache: %s", folder)


def _emit_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` with the environment record as strict JSON: a figure that is not a number
    (NaN: nothing was measured, e.g. no link in use) is ``null``, as JSON has no NaN."""
    from qverify.provenance import environment

    payload = {**payload, "environment": environment()}
    sys.stdout.write(json.dumps(_finite(payload), indent=2, default=float, allow_nan=False) + "\n")


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float (also inside numpy scalars, lists, tuples, dicts) as ``None``."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, str | bytes):
        return _finite(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
