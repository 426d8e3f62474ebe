"""``render_pdf``: the published HTML laid out by WeasyPrint, checked by turning its pages into images."""

from __future__ import annotations

import numpy as np
import pytest

from fairness_pipeline.reports import render_html
from fairness_pipeline.reports.pdf import PdfUnavailableError, render_pdf
from fairness_pipeline_tests.test_reports_builder import hand_report

pdfium = pytest.importorskip("pypdfium2")


@pytest.fixture(scope="module")
def pdf() -> bytes:
    try:
        return render_pdf(render_html(hand_report()))
    except PdfUnavailableError as exc:  # no Pango on this machine: the CLI says so in one line
        pytest.skip(str(exc))


def _pages(pdf: bytes) -> list:
    return list(pdfium.PdfDocument(pdf))


def test_pdf_has_pages_with_the_report_text(pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF-")
    pages = _pages(pdf)
    assert 3 <= len(pages) <= 30
    text = " ".join(page.get_textpage().get_text_range() for page in pages)
    first = pages[0].get_textpage().get_text_range()
    assert "Fairness report" in first and "acme" in first and "HIGH" in first
    for heading in ("Impact ratios by group", "Compliance checklist", "NYC Local Law 144 audit summary", "Method"):
        assert heading in text
    assert "an impact ratio of 0.50" in text  # startup: 40/200 against faang's 40/100, by hand


def test_pdf_pages_are_not_blank_and_the_chart_is_drawn(pdf: bytes) -> None:
    pages = _pages(pdf)
    for page in pages:
        pixels = np.asarray(page.render(scale=0.5).to_pil().convert("L"))
        assert (pixels < 200).mean() > 0.002  # some ink on every page
    # the page holding the first impact-ratio chart: the chart's box has several tones (dots, whiskers, bands)
    index = next(i for i, p in enumerate(pages) if "Impact ratios, company_tier" in p.get_textpage().get_text_range())
    page = pages[index]
    textpage = page.get_textpage()
    found = textpage.search("Impact ratios, company_tier").get_next()
    assert found is not None
    bottom = textpage.get_charbox(found[0])[1]
    scale = 2
    image = np.asarray(page.render(scale=scale).to_pil().convert("RGB")).astype(int)
    height = image.shape[0]
    y0 = int((page.get_height() - bottom) * scale)
    region = image[y0 : min(height, y0 + 120 * scale), :]  # the chart is below its title
    colours = {tuple(c) for c in region.reshape(-1, 3)[::7]}
    red_dots = ((region[..., 0] > 150) & (region[..., 1] < 80) & (region[..., 2] < 90)).sum()
    assert len(colours) > 20 and red_dots > 20  # the significant group's dot and whisker are red


def test_missing_pango_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pango(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    with pytest.raises(PdfUnavailableError, match=r"needs WeasyPrint and Pango .* install Pango"):
        render_pdf("<p>x</p>")
