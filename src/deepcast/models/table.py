"""`deepcast models`: every registered family with its capabilities and options, as text."""

from __future__ import annotations

from deepcast.models.registry import REGISTRY

_COLUMNS = ("option", "type", "default", "valid", "search", "meaning")


def table() -> str:
    """One block per family: its name and summary, capabilities, then one row per option.

    >>> print(table())
    lstm  stacked LSTM (fused CPU kernel), dense head to all horizon steps
      capabilities: outputs point, quantile, distribution; default loss huber; dropout sampling
      option  type  default  valid        search          meaning
      units   int   64       an int >= 1  16..256 (log)   LSTM units per layer
    ...
    """
    blocks = []
    for family in REGISTRY.values():
        lines = [f"{family.name}  {family.summary}", f"  capabilities: {_capabilities(family)}"]
        rows = [
            (
                o.name,
                o.kind.__name__,
                _plain(o.default),
                o.valid_range(),
                _search(o.search),
                o.help,
            )
            for o in family.options
        ]
        if rows:
            widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(_COLUMNS)]
            for row in (_COLUMNS, *rows):
                lines.append("  " + "  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip())
        else:
            lines.append("  no options")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _capabilities(family) -> str:
    parts = ["outputs " + ", ".join(family.outputs), f"default loss {family.default_loss or 'mse'}"]
    for flag, text in (
        ("future_inputs", "known-future inputs"),
        ("attention", "attention weights"),
        ("dropout_sampling", "dropout sampling"),
    ):
        if getattr(family, flag):
            parts.append(text)
    return "; ".join(parts)


def _search(search) -> str:
    if search is None:
        return "-"
    if isinstance(search, list):
        return ",".join(_plain(v) for v in search)
    text = f"{_plain(search['low'])}..{_plain(search['high'])}"
    return text + (" (log)" if search.get("log") else "")


def _plain(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
