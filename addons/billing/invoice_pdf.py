"""An invoice as a PDF (fpdf2: pure Python, maintained, embeds TrueType fonts), in the invoice's
language. The font is DejaVu Sans where the system has it (any Latin, Greek or Cyrillic name
prints); otherwise Helvetica in Windows-1252, where a character outside it prints as '?'."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from .money import format_money, format_rate

FONT_PATHS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
              Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"))


def _font(pdf: FPDF) -> tuple[str, bool]:
    for path in FONT_PATHS:
        if path.is_file():
            pdf.add_font("body", "", str(path))
            bold = path.with_name("DejaVuSans-Bold.ttf")
            pdf.add_font("body", "B", str(bold if bold.is_file() else path))
            return "body", True
    pdf.core_fonts_encoding = "windows-1252"
    return "helvetica", False


def render(invoice, gettext, corrects_number: str = "") -> bytes:
    """The PDF of ``invoice``; ``gettext`` is the invoice language's (``_(msgid, **kw)``);
    ``corrects_number``: for a credit note, the number of the invoice it corrects."""
    _ = gettext
    pdf = FPDF(format="A4")
    pdf.set_title(invoice.number)
    pdf.set_creator("smsgw")
    family, unicode_font = _font(pdf)
    pdf.add_page()
    pdf.set_auto_page_break(True, 15)
    width = pdf.epw

    def text(value: str) -> str:
        return value if unicode_font else value.encode("windows-1252", "replace").decode("windows-1252")

    def money(amount: int) -> str:
        return text(format_money(amount, invoice.currency, invoice.language))

    def block(lines, size=10, style=""):
        pdf.set_font(family, style, size)
        for line in lines:
            if line:
                pdf.multi_cell(width, 5, text(line), new_x="LMARGIN", new_y="NEXT")

    title = _("Credit note") if invoice.kind == "credit_note" else _("Invoice")
    block([f"{title} {invoice.number}"], 16, "B")
    pdf.ln(2)
    block([_("Issued: %(date)s", date=invoice.issued_at.date().isoformat())])
    if invoice.period_start and invoice.period_end:
        block([_("Period: %(start)s to %(end)s", start=invoice.period_start.date().isoformat(),
                 end=invoice.period_end.date().isoformat())])
    if invoice.kind == "invoice":
        block([_("Due: %(date)s", date=invoice.due_at.date().isoformat())])
    pdf.ln(4)
    seller, buyer = invoice.seller, invoice.buyer
    block([_("Billed by")], 10, "B")
    block([seller.get("name"), *(seller.get("address") or "").splitlines(), seller.get("country"),
           _("VAT id: %(id)s", id=seller["vat_id"]) if seller.get("vat_id") else ""])
    pdf.ln(3)
    block([_("Billed to")], 10, "B")
    block([buyer.get("company"), *(buyer.get("address") or "").splitlines(), buyer.get("country"),
           _("VAT id: %(id)s", id=buyer["vat_id"]) if buyer.get("vat_id") else ""])
    pdf.ln(5)
    widths = (52, 12, 18, 18)  # proportions of the page's width
    pdf.set_font(family, "", 10)
    with pdf.table(col_widths=widths, text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"), first_row_as_headings=True,
                   line_height=6, borders_layout="HORIZONTAL_LINES") as table:
        table.row([text(h) for h in (_("Description"), _("Quantity"), _("Unit price"), _("Amount"))])
        for line in invoice.lines:  # a long description wraps within its column; nothing is cut off
            table.row([text(line["description"]), str(line["quantity"]), money(line["unit_amount"]),
                       money(line["amount"])])
    pdf.ln(2)
    cols = [width * w / 100 for w in widths]

    def total_row(label, amount, style=""):
        pdf.set_font(family, style, 10)
        pdf.cell(cols[0] + cols[1] + cols[2], 7, text(label), align="R")
        pdf.cell(cols[3], 7, money(amount), align="R")
        pdf.ln()

    total_row(_("Subtotal"), invoice.subtotal)
    if invoice.reverse_charge:
        total_row(_("VAT 0 % (reverse charge)"), 0)
    elif invoice.tax_rate_bp:
        total_row(f"{invoice.tax_name or _('Tax')} {format_rate(invoice.tax_rate_bp)}", invoice.tax_amount)
    total_row(_("Total"), invoice.total, "B")
    pdf.ln(4)
    if invoice.reverse_charge:
        block([_("Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive "
                 "2006/112/EC).")], 9)
    if invoice.kind == "credit_note":
        block([_("This credit note corrects invoice %(number)s.", number=corrects_number)], 9)
    elif seller.get("bank_details"):
        block([_("Pay by bank transfer to:"), *seller["bank_details"].splitlines(),
               _("Reference: %(number)s", number=invoice.number)], 9)
    return bytes(pdf.output())
