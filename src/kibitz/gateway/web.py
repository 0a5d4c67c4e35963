"""The built React app: static files, hashed assets cached for a year, SPA fallback."""

from __future__ import annotations

from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from kibitz.kit.errors import NotFound

# Vite puts content-hashed files under assets/: a changed file gets a new name, so cache forever.
_IMMUTABLE = "public, max-age=31536000, immutable"
# index.html names the current hashed assets: always revalidate it.
_REVALIDATE = "no-cache"
_OTHER_FILES = "public, max-age=3600"


def wants_html(request: Request) -> bool:
    """A browser navigation: GET/HEAD asking for HTML, without an API credential."""
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and "authorization" not in request.headers
    )


class WebUI:
    """Serves `dist` (Vite's output) at `/`; unknown page paths get index.html (client routing)."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist.resolve()

    def response(self, request: Request) -> Response:
        """The file, the app shell, the build instructions, or a 404 problem."""
        index = self.dist / "index.html"
        if not index.is_file():
            if wants_html(request) or request.url.path == "/":
                return self._not_built()
            raise NotFound("No such route.")
        relative = request.url.path.lstrip("/")
        if relative and request.method in ("GET", "HEAD"):
            candidate = (self.dist / relative).resolve()
            if candidate.is_relative_to(self.dist) and candidate.is_file():
                cache = _IMMUTABLE if relative.startswith("assets/") else _OTHER_FILES
                if candidate == index:
                    cache = _REVALIDATE
                return FileResponse(candidate, headers={"Cache-Control": cache})
        if request.url.path == "/" or wants_html(request):
            return FileResponse(index, headers={"Cache-Control": _REVALIDATE})
        raise NotFound("No such route.")

    def _not_built(self) -> Response:
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kibitz</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}
code{{background:#f2f2f2;padding:.1rem .3rem;border-radius:.2rem}}</style></head>
<body><h1>kibitz is running</h1>
<p>The API answers here (see <a href="/docs">the API reference</a>), but the web UI has not been
built yet: no <code>index.html</code> in <code>{escape(str(self.dist))}</code>.</p>
<p>Build it with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>
(or <code>make run</code>), or point <code>KIBITZ_WEB_DIST</code> at a built copy,
then reload this page.</p>
</body></html>"""
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})
