"""Static HTML pages (report, leaderboard) from Jinja2 templates shipped as package data.

Every page is one self-contained file that opens offline: styles and the one script are inline,
images are ``data:`` URIs and plots inline SVG, and a content-security policy forbids every
network request (``default-src 'none'``; the script is allowed by its sha256 only).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from importlib.resources import files

TEMPLATES = "templates"


def _asset(name: str) -> str:
    return files(__package__).joinpath(TEMPLATES, name).read_text(encoding="utf-8")


def content_security_policy(script: str) -> str:
    """No network of any kind; inline styles; only this exact script runs."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


@lru_cache(maxsize=1)
def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader(__package__, TEMPLATES), autoescape=select_autoescape(["j2", "html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_page(template: str, **context) -> str:
    """Render ``templates/<template>`` with the shared style, script and CSP."""
    script = _asset("page.js")
    return _env().get_template(template).render(script=script, style=_asset("page.css"),
                                                 csp=content_security_policy(script), **context)
