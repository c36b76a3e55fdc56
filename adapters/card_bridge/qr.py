"""The link as a QR code (二次元コード) for the PC/tablet flow: the phone scans what the page shows."""

from __future__ import annotations

import io

import segno

SVG_SCALE = 4
PNG_SCALE = 8
BORDER = 4  # the quiet zone the standard asks for; cameras fail without it


def qr_code(url: str) -> segno.QRCode:
    """Always a full QR code at level M: phone cameras do not read Micro QR."""
    return segno.make(url, error="m", micro=False)


def render_svg(url: str) -> bytes:
    """A standalone SVG (with its namespace), so an <img> tag can show it."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="svg", scale=SVG_SCALE, border=BORDER, title="二次元コード")
    return out.getvalue()


def render_png(url: str) -> bytes:
    """A PNG for pages that cannot embed SVG."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="png", scale=PNG_SCALE, border=BORDER)
    return out.getvalue()
