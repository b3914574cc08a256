"""Closed-form link physics: parameters, MDI-QKD and decoy-BB84 key rates.

Formulas live once, written so they take numpy (float64) or jax.numpy arrays. See
:mod:`qverify.physics.mdi`, :mod:`qverify.physics.bb84` and :mod:`qverify.physics.rates`.
"""

from qverify.physics.params import (
    GYS_2004,
    LCQ_2012,
    LIM_2014,
    PRESETS,
    Channel,
    Detector,
    ErrorCorrection,
    LinkParams,
    Source,
    transmittance,
)
from qverify.physics.rates import DECOYS, PROTOCOLS, LinkRate, link_rate, max_distance_km

__all__ = [
    "DECOYS",
    "GYS_2004",
    "LCQ_2012",
    "LIM_2014",
    "PRESETS",
    "PROTOCOLS",
    "Channel",
    "Detector",
    "ErrorCorrection",
    "LinkParams",
    "LinkRate",
    "Source",
    "link_rate",
    "max_distance_km",
    "transmittance",
]
