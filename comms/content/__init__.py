"""Editors' content as typed data: the kinds (`models`: Event, Award, Practice, Issue, the
Site that holds them, the KINDS registry and the one date → instant helper), the reader that
turns content/<kind>/*.md into a Site plus every problem as a path:line ContentError (`reader`),
and Markdown → sanitised HTML (`markup`). May import comms.core only."""
