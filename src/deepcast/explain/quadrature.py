"""Quadrature rules for the path integral of Integrated Gradients, mapped to [0, 1].

IG integrates the gradient along the straight path `baseline + alpha * (x - baseline)` for
alpha in [0, 1]. A rule gives the points `alphas` at which the gradient is taken and the
`weights` that turn the gradients into the integral: integral ~= sum(weights * grad(alphas)).
Gauss-Legendre and the midpoint rule are Captum's (`approximation_methods`) exactly.
"""

from __future__ import annotations

import numpy as np

from deepcast.errors import ConfigError

METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_middle")


def alphas_and_weights(steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Points in [0, 1] and their weights (summing to 1) for `steps` gradient evaluations.

    Gauss-Legendre is exact for polynomials of degree 2*steps - 1 along the path, so it
    needs far fewer steps than a Riemann sum for the same completeness gap.

    >>> alphas, weights = alphas_and_weights(4, "riemann_trapezoid")
    >>> alphas.tolist(), weights.tolist()
    ([0.0, 0.333..., 0.666..., 1.0], [0.1666..., 0.333..., 0.333..., 0.1666...])
    """
    if method not in METHODS:
        raise ConfigError(f"Expected method to be one of {METHODS}. Received: method={method!r}")
    if method == "riemann_trapezoid" and steps < 2:
        raise ConfigError(f"riemann_trapezoid needs steps >= 2. Received: steps={steps}")
    if steps < 1:
        raise ConfigError(f"steps must be a positive integer. Received: steps={steps}")

    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1], weights sum to 2
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if method == "riemann_middle":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    # Trapezoid on a uniform grid with both end points: spacing 1/(steps-1), ends halved, so
    # the weights sum to exactly 1 and a linear model gets exact attributions. (Captum uses
    # spacing 1/steps here, whose weights sum to 1 - 1/steps.)
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] /= 2
    return np.linspace(0.0, 1.0, steps), weights
