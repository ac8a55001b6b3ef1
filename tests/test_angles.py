"""head/angles.py: the one affine-angle rule the torch engines and Aer's shift plans share."""

from __future__ import annotations

import math

from qiskit.circuit import Parameter

from qsetfit.head.angles import affine_terms, constant_term

X, W = Parameter("x"), Parameter("w")
KEY = {X: "x", W: "w"}


def test_an_affine_angle_splits_into_coefficients_and_a_constant():
    angle = 2.5 * X - 0.5 * W + math.pi / 4
    assert affine_terms(angle, KEY) == {"x": 2.5, "w": -0.5}
    assert math.isclose(constant_term(angle), math.pi / 4)


def test_a_repeated_parameter_adds_its_coefficients():
    angle = X + 2 * X + W / 4
    assert affine_terms(angle, KEY) == {"x": 3.0, "w": 0.25}
    assert constant_term(angle) == 0.0


def test_a_product_or_nonlinear_angle_is_not_affine():
    assert affine_terms(X * W, KEY) is None
    assert affine_terms(X * X + 1, KEY) is None
    assert affine_terms(X.sin(), KEY) is None


def test_the_rule_reproduces_the_angle_at_random_points():
    angle = 0.3 * X + 1.7 * W - 2.0
    terms, const = affine_terms(angle, KEY), constant_term(angle)
    assert terms is not None
    for x, w in ((0.1, -0.4), (2.0, 3.5), (-1.2, 0.0)):
        expected = float(angle.bind({X: x, W: w}))
        assert math.isclose(const + terms["x"] * x + terms["w"] * w, expected, abs_tol=1e-12)
