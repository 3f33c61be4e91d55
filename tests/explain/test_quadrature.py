import numpy as np
import pytest

from deepcast.errors import ConfigError
from deepcast.explain.quadrature import METHODS, alphas_and_weights


@pytest.mark.parametrize("method", METHODS)
def test_weights_sum_to_one_and_alphas_lie_in_unit_interval(method):
    alphas, weights = alphas_and_weights(16, method)
    assert alphas.shape == weights.shape == (16,)
    assert np.all((alphas >= 0) & (alphas <= 1))
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_integrates_a_cubic(method):
    alphas, weights = alphas_and_weights(64, method)
    # integral_0^1 (3a^2 + 2a) da = 2; Gauss-Legendre is exact, Riemann rules close.
    tol = 1e-12 if method == "gausslegendre" else 1e-3
    assert np.sum(weights * (3 * alphas**2 + 2 * alphas)) == pytest.approx(2.0, abs=tol)


def test_gauss_legendre_matches_captum_convention():
    alphas, weights = alphas_and_weights(5, "gausslegendre")
    nodes, w = np.polynomial.legendre.leggauss(5)
    np.testing.assert_allclose(alphas, 0.5 * (1 + nodes))
    np.testing.assert_allclose(weights, 0.5 * w)


@pytest.mark.parametrize(("steps", "method"), [(0, "gausslegendre"), (1, "riemann_trapezoid")])
def test_rejects_too_few_steps(steps, method):
    with pytest.raises(ConfigError, match="steps"):
        alphas_and_weights(steps, method)


def test_rejects_unknown_method():
    with pytest.raises(ConfigError, match="riemann_left"):
        alphas_and_weights(8, "riemann_left")
