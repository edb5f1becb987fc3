"""The reports' charts as SVG files drawn by pygal (no hand-made SVG), each with its figures as
a table on an HTML page beside them: readable without JavaScript, in the site's language."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygal

from comms.core.config import Config
from comms.publish.templating import render_template, translate
from comms.reports.audience_report import AudienceReport
from comms.reports.issue_report import NO_CHOICE, IssueReport

#: The drawing size of every chart (the page scales it down on small screens).
WIDTH, HEIGHT = 800, 450


@dataclass(frozen=True)
class Chart:
    """One chart: what it shows, as labels and named series of counts."""

    #: The file name without `.svg`.
    name: str
    title: str
    #: `bar` (one bar per label, horizontal) or `line` (one line per series over the labels).
    kind: str
    #: The heading of the table's first column (what the labels are).
    axis: str
    labels: list[str]
    series: dict[str, list[int]]

    def svg(self) -> str:
        """The chart drawn by pygal: values printed on it, so no tooltip (script) is needed."""
        options = {
            "title": self.title,
            "width": WIDTH,
            "height": HEIGHT,
            "js": [],  # no script from the web: the values are printed on the chart
            "print_values": self.kind == "bar",
            "show_legend": len(self.series) > 1,
            "legend_at_bottom": True,
            "disable_xml_declaration": True,
            "x_label_rotation": 30 if self.kind == "line" else 0,
        }
        chart = (pygal.HorizontalBar if self.kind == "bar" else pygal.Line)(**options)
        chart.x_labels = self.labels
        for name, values in self.series.items():
            chart.add(name, values)
        return str(chart.render(is_unicode=True))


def _label(config: Config, table: dict[str, str], value: str) -> str:
    if value == NO_CHOICE:
        return translate(config.home_language, "All regions")
    return table.get(value, value)


def issue_charts(config: Config, report: IssueReport) -> list[Chart]:
    """The outcome of an issue's deliveries and its recipients per region."""
    lang = config.home_language
    data = report.to_json()
    outcome = {
        "Delivered": data["delivered"],
        "Waiting for a retry": data["deferred"],
        "Failed": data["failed"],
        "Skipped": data["skipped"],
        "Hard bounces": data["bounced"]["hard"],
        "Soft bounces": data["bounced"]["soft"],
        "Complaints": data["complaints"],
        "Unsubscribes": data["unsubscribes"],
    }
    regions = data["reach"]["regions"]
    number = translate(lang, "Number")
    return [
        Chart(
            "outcome",
            translate(lang, "Outcome of the deliveries"),
            "bar",
            translate(lang, "Outcome"),
            [translate(lang, name) for name in outcome],
            {number: list(outcome.values())},
        ),
        Chart(
            "regions",
            translate(lang, "Recipients per region"),
            "bar",
            translate(lang, "Region"),
            [_label(config, config.settings.regions, r) for r in regions],
            {number: list(regions.values())},
        ),
    ]


def audience_charts(config: Config, report: AudienceReport) -> list[Chart]:
    """Sign-ups and departures per month, and the active subscribers per region."""
    lang = config.home_language
    months = report.months()
    lines = {
        "Sign-ups": [m["signups"] for m in months],
        "Confirmations": [m["confirmations"] for m in months],
        "Imports": [m["imports"] for m in months],
        "Unsubscribes": [m["unsubscribes"] for m in months],
        "Bounced": [m["bounces"] for m in months],
        "Complaints": [m["complaints"] for m in months],
        "Erasures": [m["erasures"] for m in months],
    }
    regions = report.figures.regions
    return [
        Chart(
            "subscribers",
            translate(lang, "Subscribers over time"),
            "line",
            translate(lang, "Month"),
            [m["month"] for m in months],
            {translate(lang, name): values for name, values in lines.items()},
        ),
        Chart(
            "regions",
            translate(lang, "Active subscribers per region"),
            "bar",
            translate(lang, "Region"),
            [_label(config, config.settings.regions, share.value) for share in regions],
            {translate(lang, "Number"): [share.count for share in regions]},
        ),
    ]


def write_charts(config: Config, charts: list[Chart], folder: Path, title: str) -> list[Path]:
    """Write each chart as `<name>.svg` and all of them with their tables as `index.html`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in charts:
        path = folder / f"{chart.name}.svg"
        path.write_text(chart.svg(), encoding="utf-8")
        written.append(path)
    page = render_template(
        "web", "charts.html.j2", config.home_language,
        lang=config.home_language, title=title, charts=charts,
    )  # fmt: skip
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return [*written, index]
