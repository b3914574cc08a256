"""Validated link parameters: channel, source, detectors and error correction.

All dataclasses are frozen and check their fields on construction, raising
:class:`qverify.errors.ParameterError` with the field name, the value and the allowed range.
Rates elsewhere in :mod:`qverify.physics` are *per pulse* unless a name ends in ``_bps``.

Presets reproduce the parameter sets of two papers used as published anchors:

* :data:`GYS_2004` — Gobby, Yuan, Shields, APL 84, 3762 (2004), as tabulated in Ma, Qi, Zhao, Lo,
  PRA 72, 012326 (2005), Table I: 0.21 dB/km, e_d = 3.3 %, Y0 = 1.7e-6, η_Bob = 4.5 %, f = 1.22.
  GLLP's Y0 is the background yield of *both* detectors, so ``p_dark = Y0 / 2`` per detector.
* :data:`LCQ_2012` — Lo, Curty, Qi, PRL 108, 130503 (2012): 0.2 dB/km, e_d = 1.5 %, η_d = 14.5 %,
  f = 1.16, Y0 = 3e-6. In the Ma–Razavi formulas (PRA 86, 062319, 2012) the dark-count figure
  p_d is *per detector per pulse*; LCQ's Y0 = 3e-6 is used as that per-detector p_d.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from qverify.errors import ChoiceError, ParameterError
from qverify.physics._validate import check_range
from qverify.physics.detector import check_convention, check_dead_time

DoubleClick = Literal["squash", "discard"]


@dataclass(frozen=True)
class Channel:
    """Optical fibre channel.

    Attributes:
        loss_db_per_km: attenuation in dB/km, in [0, 10].
        e_mis: misalignment error probability (a Pauli flip of the encoded bit), in [0, 0.5].
    """

    loss_db_per_km: float = 0.2
    e_mis: float = 0.015

    def __post_init__(self) -> None:
        check_range("loss_db_per_km", self.loss_db_per_km, 0.0, 10.0)
        check_range("e_mis", self.e_mis, 0.0, 0.5)


@dataclass(frozen=True)
class Detector:
    """Single-photon detectors (threshold detectors).

    Attributes:
        eta_det: detection efficiency, in (0, 1].
        p_dark: dark-count probability per detector per pulse, in [0, 1).
        double_click: what a double click becomes: ``"squash"`` (a random bit, as GLLP and
            Ma–Razavi assume) or ``"discard"`` (as event simulators do).
        dead_time_slots: slots each detector stays blind after a click (an integer in [0, 200]; 0 for
            the closed forms). Solved exactly per detector (:mod:`qverify.physics.detector`).
        p_afterpulse: after-pulse probability per detection, in [0, 1): Lim et al.'s model (PRA 89,
            022307 (2014), Sec. IV), detection probability ``D (1 + p_ap)``, error probability
            ``+ p_ap D / 2`` (:func:`qverify.physics.finite.afterpulse_gains`). BB84 with squashed
            double clicks only; not composed with dead time (refused).
    """

    eta_det: float = 0.145
    p_dark: float = 3e-6
    double_click: DoubleClick = "squash"
    dead_time_slots: int = 0
    p_afterpulse: float = 0.0

    def __post_init__(self) -> None:
        check_range("eta_det", self.eta_det, 0.0, 1.0, low_open=True)
        check_range("p_dark", self.p_dark, 0.0, 1.0, high_open=True)
        object.__setattr__(self, "dead_time_slots", check_dead_time(self.dead_time_slots))
        check_convention(self.double_click)
        check_range("p_afterpulse", self.p_afterpulse, 0.0, 1.0, high_open=True)
        if self.p_afterpulse > 0 and self.dead_time_slots > 0:
            raise ParameterError(
                "p_afterpulse",
                self.p_afterpulse,
                "0 with dead_time_slots > 0 (after-pulses are not in the dead-time chain)",
            )
        if self.p_afterpulse > 0 and self.double_click != "squash":
            raise ParameterError("p_afterpulse", self.p_afterpulse, "0 with double_click='discard' (squash only)")


@dataclass(frozen=True)
class ErrorCorrection:
    """Classical post-processing.

    Attributes:
        f_ec: error-correction inefficiency (1 = Shannon limit), in [1, 10].
    """

    f_ec: float = 1.16

    def __post_init__(self) -> None:
        check_range("f_ec", self.f_ec, 1.0, 10.0)


@dataclass(frozen=True)
class Source:
    """Phase-randomised weak-coherent-pulse source with decoy states.

    Attributes:
        clock_hz: pulse repetition rate in Hz, in (0, 1e11].
        mu: signal mean photon number; ``None`` means optimised per distance. In (0, 10].
        nu: weak-decoy mean photon number for the vacuum + weak method, in (0, mu).
        sift_factor: fraction of detected pulses that enter the key after basis sifting, in (0, 1].
            ``None`` (the default) takes each protocol's standard figure (:meth:`sift_for`): 1/2 for
            BB84 (Bennett–Brassard: bases chosen with equal probability) and 1 for MDI-QKD, whose
            Lo–Curty–Qi rate formula assumes the key basis is chosen with probability → 1. Set 1 for
            efficient (biased-basis) BB84; every output names the factor used.
    """

    clock_hz: float = 1e9
    mu: float | None = None
    nu: float = 0.01
    sift_factor: float | None = None

    def sift_for(self, protocol: str) -> float:
        """The sifting factor a rate of ``protocol`` uses (see ``sift_factor``).

        >>> Source().sift_for("bb84"), Source().sift_for("mdi"), Source(sift_factor=1.0).sift_for("bb84")
        (0.5, 1.0, 1.0)
        """
        if self.sift_factor is not None:
            return float(self.sift_factor)
        return 1.0 if protocol == "mdi" else 0.5

    def __post_init__(self) -> None:
        check_range("clock_hz", self.clock_hz, 0.0, 1e11, low_open=True)
        if self.mu is not None:
            check_range("mu", self.mu, 0.0, 10.0, low_open=True)
            check_range("nu", self.nu, 0.0, self.mu, low_open=True, high_open=True)
        else:
            check_range("nu", self.nu, 0.0, 1.0, low_open=True, high_open=True)
        if self.sift_factor is not None:
            check_range("sift_factor", self.sift_factor, 0.0, 1.0, low_open=True)


@dataclass(frozen=True)
class LinkParams:
    """Everything a point-to-point key-rate calculation needs, besides the distance.

    Attributes:
        channel, detector, ec, source: see the respective dataclasses.
        relay_fraction: for MDI-QKD, the fraction of the Alice–Bob fibre between Alice and the
            relay (Charlie); 0.5 puts Charlie in the middle. In [0, 1].
    """

    channel: Channel = field(default_factory=Channel)
    detector: Detector = field(default_factory=Detector)
    ec: ErrorCorrection = field(default_factory=ErrorCorrection)
    source: Source = field(default_factory=Source)
    relay_fraction: float = 0.5

    def __post_init__(self) -> None:
        check_range("relay_fraction", self.relay_fraction, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict of every field, with the unit-carrying names used in JSON provenance."""
        out: dict[str, Any] = {}
        for part in (self.channel, self.detector, self.ec, self.source):
            out.update(asdict(part))
        out["relay_fraction"] = self.relay_fraction
        return out

    def replace(self, **changes: Any) -> LinkParams:
        """A copy with flat field names changed, e.g. ``params.replace(eta_det=0.2)``.

        >>> LCQ_2012.replace(p_dark=1e-7).detector.p_dark
        1e-07
        """
        from dataclasses import fields, replace

        groups: dict[str, dict[str, Any]] = {"channel": {}, "detector": {}, "ec": {}, "source": {}}
        top: dict[str, Any] = {}
        for key, value in changes.items():
            for name in groups:
                part = getattr(self, name)
                if key in {f.name for f in fields(part)}:
                    groups[name][key] = value
                    break
            else:
                if key == "relay_fraction":
                    top[key] = value
                else:
                    raise ChoiceError("parameter", key, sorted(self.to_dict()))
        parts = {name: replace(getattr(self, name), **kw) for name, kw in groups.items() if kw}
        return replace(self, **parts, **top)


LCQ_2012 = LinkParams(
    channel=Channel(loss_db_per_km=0.2, e_mis=0.015),
    detector=Detector(eta_det=0.145, p_dark=3e-6),
    ec=ErrorCorrection(f_ec=1.16),
    source=Source(),
)
"""Lo–Curty–Qi PRL 108, 130503 (2012) simulation parameters (p_dark per detector per pulse)."""

GYS_2004 = LinkParams(
    channel=Channel(loss_db_per_km=0.21, e_mis=0.033),
    detector=Detector(eta_det=0.045, p_dark=1.7e-6 / 2),
    ec=ErrorCorrection(f_ec=1.22),
    source=Source(),
)
"""GYS experiment parameters as used by Ma et al. PRA 72, 012326 (2005), Table I."""

LIM_2014 = LinkParams(
    channel=Channel(loss_db_per_km=0.2, e_mis=5e-3),
    detector=Detector(eta_det=0.1, p_dark=6e-7, p_afterpulse=0.04),
    ec=ErrorCorrection(f_ec=1.16),
    source=Source(),
)
"""Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014), parameters of Fig. 1 (dedicated fibre):
η_Bob = 10 %, p_dc = 6e-7, p_ap = 4 %, 0.2 dB/km, e_mis = 0.5 %, f_EC = 1.16."""

PRESETS: dict[str, LinkParams] = {"lcq2012": LCQ_2012, "gys2004": GYS_2004, "lim2014": LIM_2014}


def transmittance(distance_km: Any, loss_db_per_km: float) -> Any:
    """Fibre transmittance ``10**(-loss * L / 10)`` (dimensionless)."""
    return 10.0 ** (-loss_db_per_km * distance_km / 10.0)
