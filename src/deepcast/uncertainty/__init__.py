"""Uncertainty for forecasts: conformal intervals, Monte Carlo dropout and anomaly flags."""
