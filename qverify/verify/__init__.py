"""Estimates with confidence intervals, and the analyses that turn counts into verdicts."""

from qverify.verify.stats import Estimate, clopper_pearson, hoeffding

__all__ = ["Estimate", "clopper_pearson", "hoeffding"]
