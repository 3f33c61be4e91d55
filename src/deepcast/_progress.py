"""The one progress helper: every long loop in deepcast reports through it.

Bars go to stderr and switch themselves off when stderr is not a terminal unless forced, so
logs and CI output stay readable.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def enabled(verbose: bool | None = None) -> bool:
    if verbose is not None:
        return verbose
    if os.environ.get("DEEPCAST_PROGRESS") == "1":
        return True
    return sys.stderr.isatty()


def bar(total: int | None, desc: str, unit: str = "it", verbose: bool | None = None, **kw):
    """A tqdm bar (or a silent one) with deepcast's defaults."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled(verbose),
        dynamic_ncols=True,
        leave=kw.pop("leave", True),
        file=sys.stderr,
        **kw,
    )
