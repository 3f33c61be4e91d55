"""Drift monitoring of a served model: a reference saved at training time, and detectors
on the one-step errors and on the inputs (see drift.py for the methods and defaults).

>>> from deepcast.monitoring import DriftReference, ErrorDrift, InputDrift
>>> ref = DriftReference.build(train_frame, validation_errors, period=168)
>>> alarms = ErrorDrift(ref).scan(live_errors) + InputDrift(ref).scan(live_frame)
"""

from deepcast.monitoring.drift import Alarm, ErrorDrift, InputDrift
from deepcast.monitoring.reference import DriftReference

__all__ = ["Alarm", "DriftReference", "ErrorDrift", "InputDrift"]
