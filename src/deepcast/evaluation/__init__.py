"""Scoring forecasts: metrics, honest baselines and the forecast figure.

`metrics` and `baselines` are pure numerics over numpy arrays; `plots` builds matplotlib
figures without saving them. Import from the submodules, e.g.
`from deepcast.evaluation.metrics import all_metrics`.
"""
