"""Search spaces shared by the engine tests."""

# `units` only for the lstm, `heads` only for the transformer: each engine must suggest an
# entry only when its condition holds.
CONDITIONAL = {
    "model": ["lstm", "transformer"],
    "units": {"type": "int", "low": 8, "high": 32, "when": {"model": ["lstm"]}},
    "heads": {"values": [2, 4], "when": {"model": ["transformer"]}},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
}
