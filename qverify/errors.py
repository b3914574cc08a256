"""Exceptions raised by qverify.

Every error that comes from bad input is a :class:`QverifyError` whose message names the field, the
value received and the allowed range, so that a user never sees a traceback from deep inside numpy
or Qiskit. The CLI prints the message on one line and exits with status 2.
"""

from __future__ import annotations

from typing import Any


class QverifyError(ValueError):
    """Base class of every qverify input error."""


class ParameterError(QverifyError):
    """A parameter lies outside its allowed range.

    >>> raise ParameterError("eta_det", 1.5, "(0, 1]")
    Traceback (most recent call last):
    ...
    qverify.errors.ParameterError: eta_det = 1.5 is outside the allowed range (0, 1]
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} = {value!r} is outside the allowed range {allowed}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields, so it crosses process boundaries (worker pools) intact.
        return (type(self), (self.field, self.value, self.allowed))


class ChoiceError(QverifyError):
    """A value is not one of the allowed names."""

    def __init__(self, field: str, value: Any, choices: list[str] | tuple[str, ...]) -> None:
        self.field = field
        self.value = value
        self.choices = tuple(choices)
        super().__init__(f"{field} = {value!r} is not one of: {', '.join(self.choices)}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.choices))


class CircuitError(QverifyError):
    """A circuit or QASM file cannot be used as asked."""


class BackendError(QverifyError):
    """The simulator could not run a circuit (e.g. too many qubits for the exact method)."""


class KeyDeliveryError(QverifyError):
    """A key-delivery request (ETSI GS QKD 014) that a KME refuses, with the HTTP status it answers.

    ``status`` is 400 (bad request: the message names the field, the value and what is allowed), 401
    (the calling SAE may not have these keys) or 503 (the KME cannot serve it now, e.g. its store
    holds too little key: a project rule, since the standard fixes no code for it). ``details`` is
    the standard's optional list of name/value objects. No message ever carries key material.

    >>> raise KeyDeliveryError(400, "size shall be a multiple of 8")
    Traceback (most recent call last):
    ...
    qverify.errors.KeyDeliveryError: size shall be a multiple of 8
    """

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        self.status = status
        self.message = message
        self.details = details
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.message, self.details))


class SolverError(QverifyError):
    """A numerical solver did not return a usable solution (never silently replaced by another bound).

    >>> raise SolverError("CLARABEL", "infeasible")
    Traceback (most recent call last):
    ...
    qverify.errors.SolverError: solver CLARABEL returned status infeasible
    """

    def __init__(self, solver: str, status: str, detail: str = "") -> None:
        self.solver = solver
        self.status = status
        self.detail = detail
        tail = f" ({detail})" if detail else ""
        super().__init__(f"solver {solver} returned status {status}{tail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.solver, self.status, self.detail))
