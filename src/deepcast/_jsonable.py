"""Plain JSON values from what numpy and pandas hand back."""

from __future__ import annotations


def plain(value):
    """numpy scalars -> Python numbers and NaN -> None (JSON has no NaN), recursively through
    dicts (keys as strings), lists and tuples."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
