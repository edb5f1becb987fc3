"""A realistic rendered issue for message and transport tests (≈ 20 KB of MJML-like HTML)."""

from __future__ import annotations

from pathlib import Path

from comms.content.urls import PREFERENCES_URL, UNSUBSCRIBE_URL
from comms.core.config import Config, load_config
from comms.publish.render import RenderedIssue

_BLOCK = (
    '<tr><td style="padding:0 24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;'
    'line-height:24px;color:#1a1a1a"><h2 style="margin:16px 0 8px;font-size:20px">'
    "Schwerpunktkonferenz „Sprachliche und berufliche Integration“ in Hannover</h2>"
    "<p>Über 300 Teilnehmende aus Kommunen, Kammern, Gewerkschaften und Kirchen tauschen "
    "sich über Sprachkurse, Anerkennung ausländischer Abschlüsse und den Übergang in "
    "Ausbildung aus – mit Beiträgen aus Göttingen, Lüneburg, Oldenburg und Osnabrück. "
    "Die Teilnahme ist kostenlos; eine Anmeldung ist bis zum 31.\u00a0März erforderlich.</p>"
    '<p><a href="https://newsletter.example.org/termine/2020-04-16-schwerpunktkonferenz" '
    'style="color:#00509e;text-decoration:underline">Mehr erfahren und anmelden</a></p>'
    "</td></tr>"
)


def rendered_issue(slug: str = "2020-02-newsletter", blocks: int = 27) -> RenderedIssue:
    """An issue as render_issue() returns it: placeholders in hrefs and text, one long line."""
    footer = (
        '<tr><td style="font-size:12px;color:#555">Sie erhalten diesen Newsletter, weil Sie '
        "ihn bestellt haben. "
        f'<a href="{UNSUBSCRIBE_URL}" style="color:#555">Newsletter abbestellen</a> · '
        f'<a href="{PREFERENCES_URL}" style="color:#555">Einstellungen ändern</a><br>'
        "Niedersächsische Staatskanzlei – Geschäftsstelle „Niedersachsen packt an“, "
        "Musterstraße 1, 30159 Hannover · info@example.org · 100 % ehrenamtlich =)</td></tr>"
    )
    html = (
        '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Newsletter</title>'
        '</head><body style="margin:0"><table role="presentation" width="100%">'
        + _BLOCK * blocks
        + footer
        + "</table></body></html>"
    )
    text = (
        "Newsletter „Niedersachsen packt an“ – Ausgabe 3\n\n"
        + "Schwerpunktkonferenz „Sprachliche und berufliche Integration“ am 16.\u00a0April "
        "in Hannover: Über 300 Teilnehmende, Anmeldung bis 31.\u00a0März.\n\n"
        * 5
        + "-- \n"
        + f"Abbestellen: {UNSUBSCRIBE_URL}\n"
        + f"Einstellungen: {PREFERENCES_URL}\n"
        + ".\n"
        + "Impressum: Niedersächsische Staatskanzlei, Musterstraße 1, 30159 Hannover\n"
    )
    return RenderedIssue(
        slug=slug,
        number=3,
        subject="Termine 2020: Schwerpunktkonferenz „Sprache und Arbeit“ am 16. April – "
        "jetzt anmelden für Göttingen, Lüneburg und Osnabrück",
        preheader="Konferenz, Werkstätten und der Sonderpreis 2020",
        html=html,
        text=text,
        web_url="https://newsletter.example.org/ausgaben/2020-02-newsletter/",
        language="de",
    )


SECRET = "test-secret-key-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"


def config_for(folder: Path, extra: str = "") -> Config:
    """A Config from a comms.toml in `folder` holding `extra` (sections, keys)."""
    path = folder / "comms.toml"
    path.write_text(extra, encoding="utf-8")
    return load_config(path, environ={})
