"""The report as PDF: the published HTML page laid out by WeasyPrint (no browser at run time).

WeasyPrint needs the Pango library of the system (``libpango-1.0``); without it ``render_pdf`` raises
``PdfUnavailableError`` with one line saying what to install.
"""

from __future__ import annotations

PANGO_HINT = "install Pango (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"


class PdfUnavailableError(RuntimeError):
    """WeasyPrint or the system libraries it loads are missing."""


def render_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML page (the report's inline CSS and SVG charts; nothing is fetched)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: cffi could not load libpango / libgobject
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PdfUnavailableError(f"PDF output needs WeasyPrint and Pango ({first}); {PANGO_HINT}") from exc
    return HTML(string=html, url_fetcher=_no_fetch).write_pdf()


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict:
    """Refuse every external resource: a report is self-contained, and rendering must not reach the network."""
    raise ValueError(f"external resource refused while rendering a report: {url[:60]}")
