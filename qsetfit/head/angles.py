"""Gate angles as affine functions of the circuit's parameters: ``angle = const + sum_p coeff_p p``.

The torch engines build their angle tables from it and Aer's batched gradient its shift plans, so both read
a circuit's angles by one rule.
"""

from __future__ import annotations

from typing import TypeVar
from collections.abc import Hashable

from qiskit.circuit import Parameter, ParameterExpression

K = TypeVar("K", bound=Hashable)


def affine_terms(angle: ParameterExpression, key: dict[Parameter, K]) -> dict[K, float] | None:
    """``{key[p]: d angle / d p}`` when ``angle`` is affine in every parameter, else None.

    Args:
        angle: a gate angle.
        key: each parameter's key (e.g. a column); every parameter of ``angle`` must have one.
    """
    terms: dict[K, float] = {}
    for p in angle.parameters:
        coeff = angle.gradient(p)
        if isinstance(coeff, ParameterExpression):
            if coeff.parameters:
                return None
            coeff = complex(coeff).real
        terms[key[p]] = terms.get(key[p], 0.0) + float(coeff)
    return terms


def constant_term(angle: ParameterExpression) -> float:
    """The angle with every parameter set to 0 (the ``const`` of an affine angle)."""
    return float(complex(angle.bind({p: 0.0 for p in angle.parameters})).real)
