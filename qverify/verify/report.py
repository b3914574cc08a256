"""Fidelity reports: what the verification layer hands to the network and consensus layers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from qverify.verify.stats import Estimate


@dataclass(frozen=True)
class FidelityReport:
    """One verified figure about a node or a link.

    Attributes:
        subject: node name, or ``"a–b"`` for a link.
        kind: ``"node"`` or ``"link"``.
        estimate: the fidelity estimate with its interval, trials and method.
        qber: the error rate implied for a link (mean of the Z and X error rates), in [0, 0.5].
        time_s: when it was measured (simulation time, seconds).
        reporter: who measured it (a link endpoint), if a link report.
        link: the link's two endpoints, if a link report.
        bound: which bound ``estimate`` is, with its trust assumption (node reports from GHZ tests:
            :data:`~qverify.verify.dishonest.DISHONEST_BOUND` unless stated otherwise).
        qber_upper: the conservative statistic of ``qber`` that weights read, in [0, 0.5], or
            ``None``: for link reports of the network's test rounds
            (:func:`qverify.network.measure.link_reports`), the one-sided Clopper–Pearson upper bound
            at ``estimate.confidence`` of the claim read as ``rint(qber × n)`` errors out of the
            epoch's ``n`` heralded Z/X test rounds (``qber`` itself when ``n = 0``), clipped to
            [0, 0.5]; fewer rounds give a larger bound.

    Consumed by :meth:`qverify.consensus.FidelityWeightedVoting.report` (``link``, ``reporter``,
    ``qber_upper`` where not ``None``, else ``qber``).
    """

    subject: str
    kind: Literal["node", "link"]
    estimate: Estimate
    qber: float
    time_s: float = 0.0
    reporter: str | None = None
    link: tuple[str, str] | None = None
    bound: str = ""
    qber_upper: float | None = None

    @classmethod
    def from_bsm(cls, a: str, b: str, reporter: str, result: Any, time_s: float = 0.0) -> FidelityReport:
        """Link report from a :class:`~qverify.verify.bsm.BSMResult` measured by ``reporter``."""
        return cls(f"{a}–{b}", "link", result.fidelity, float(result.qber), time_s, reporter, (a, b))

    @classmethod
    def from_ghz(cls, node: str, result: Any, time_s: float = 0.0) -> FidelityReport:
        """Node report from a :class:`~qverify.verify.ghz.GHZResult`: the bound its verdict used (the
        dishonest-party bound unless the test was run with ``trust="honest"``), named in ``bound``."""
        qber = max(0.0, min(0.5, 1 - result.pass_probability.value))
        return cls(node, "node", result.fidelity_bound, qber, time_s, bound=result.bound)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
