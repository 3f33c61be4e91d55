"""The live dashboard: `GET /` serves one page that draws `GET /v1/models/{name}/monitor`.

Everything the page needs ships in the package (`serving/static/`: index.html, app.js,
style.css); nothing is fetched from the internet. The charts are hand-drawn SVG: two line
charts do not justify a vendored chart library. The page refreshes itself every few seconds
(`/?refresh=2`, default 5) and shows one model (`/?model=demand`, default the first).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

ASSETS = Path(__file__).with_name("static")
_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Only our own files run on the page; any inline script or outside request is refused.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff"}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    """The dashboard page."""
    return FileResponse(ASSETS / "index.html", media_type="text/html; charset=utf-8",
                        headers={**_HEADERS, "Cache-Control": "no-cache"})  # fmt: skip


@router.get("/dashboard/{asset}")
async def asset(asset: str) -> FileResponse:
    """The page's script and style sheet (a fixed list: no path from the URL reaches disk)."""
    if asset not in _TYPES:
        raise HTTPException(404, f"no dashboard asset named {asset!r}")
    return FileResponse(ASSETS / asset, media_type=_TYPES[asset],
                        headers={**_HEADERS, "Cache-Control": "no-cache"})  # fmt: skip
