"""Structure checks every riskmodel page must pass: verdict first, self-contained, labelled."""

from __future__ import annotations

import re

EXTERNAL = [
    re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I),  # http(s):// or //host
    re.compile(r"<script[^>]*\ssrc\s*=", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"url\(\s*['\"]?\s*(?:https?:)?//", re.I),
    re.compile(r"<link[^>]*rel=[\"']?stylesheet", re.I),
]


def check_page(html: str) -> None:
    """Assert the page's structure: the verdict section comes before any figure or table and
    says something; every image is an inlined PNG with alt text; nothing is fetched."""
    assert html.startswith("<!DOCTYPE html>")
    for pattern in EXTERNAL:
        assert not pattern.search(html), pattern.pattern
    verdict = html.find('id="verdict"')
    assert verdict > 0, "no verdict section"
    text = re.search(r'<p class="verdict-text">(.*?)</p>', html, re.S)
    assert text and len(text.group(1).strip()) > 20, "empty verdict"
    first_content = min(i for i in (html.find("<img"), html.find("<table")) if i >= 0)
    assert verdict < first_content, "a figure or table comes before the verdict"
    images = re.findall(r"<img\b[^>]*>", html)
    for img in images:
        assert re.search(r'\ssrc="data:image/png;base64,[A-Za-z0-9+/=]+"', img), img[:80]
        alt = re.search(r'\salt="([^"]*)"', img)
        assert alt and len(alt.group(1)) > 10, img[:120]
    # every href is an in-page anchor, and its target exists
    for target in re.findall(r'href="([^"]*)"', html):
        assert target.startswith("#") and f'id="{target[1:]}"' in html, target


def headline_values(html: str) -> list[str]:
    """The headline numbers, as printed."""
    return [v.strip() for v in re.findall(r'<span class="value">(.*?)</span>', html, re.S)]
