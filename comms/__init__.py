"""comms: Markdown content in, newsletter e-mail, web archive, feeds and calendars out."""

__version__ = "0.1.0"
