"""A page's layout (head, navigation, footer) rendered once and reused for many pages.

Thousands of item pages of an edition share their layout but for a few values: the layout is
rendered once with every block of it left as a slot and each per-page value (`hole`) as a
mark, and each page is the layout with its own blocks and values put into the slots. The
bytes are those of a plain render of the page: the blocks run as the layout would run them
(`context.blocks[name][0](context)`, after the top-level code of every template of the
chain: imports and assignments) and the values are escaped as `{{ value }}` escapes them.

What the layout reads beside the holes must be the same for every page that shares it
(`Chrome.render` is given those variables only: a layout that reads a page's own variable
outside its blocks fails to render and its pages are rendered whole).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from typing import Any, cast

from jinja2 import Template, TemplateError
from jinja2.runtime import Context
from markupsafe import Markup, escape

from comms.core.errors import RenderError
from comms.publish.templating import environment

#: A slot in the rendered layout: a block (`block:main`) or a value (`hole:canonical`). NUL
#: never occurs in a page (it is not a character HTML allows).
_SLOT = re.compile("\x00((?:block|hole):[^\x00]+)\x00")


def hole(name: str) -> Markup:
    """The mark of a per-page value in the variables the layout is rendered with."""
    return Markup(f"\x00hole:{name}\x00")


class _Slots(dict[str, list[Any]]):
    """A context's blocks where every block the layout asks for is a slot."""

    def __getitem__(self, name: str) -> list[Any]:
        return [_slot(name)]


def _slot(name: str) -> Any:
    def block(context: Context) -> Iterator[str]:
        yield f"\x00block:{name}\x00"

    return block


class Chrome:
    """The layout of template `name` in `templates/<folder>/`, in `language`, cut at its
    slots (None from `make` when it cannot be rendered on its own)."""

    def __init__(self, where: str, template: Template, pieces: list[str], autoescape: bool) -> None:
        #: The template's path, for errors (`templates/web/event.html.j2`).
        self.where = where
        self.template = template
        #: Text, slot, text, slot … text.
        self.pieces = pieces
        self.autoescape = autoescape
        #: The template's globals as one dict: a page's context is them and its variables
        #: (Jinja would copy them out of their ChainMap again for every page).
        self.globals = dict(template.globals)

    @classmethod
    def make(
        cls, folder: str, name: str, language: str, shared: Mapping[str, Any]
    ) -> Chrome | None:
        """The layout rendered with `shared` (what its pages share, holes for the rest);
        None when it reads more than that."""
        env = environment(folder, language)
        template = env.get_template(name)
        context = template.new_context(dict(shared))
        context.blocks = _Slots(context.blocks)
        try:
            text = "".join(template.root_render_func(context))
        except TemplateError:
            return None  # it reads a page's own variable: its pages are rendered whole
        return cls(f"templates/{folder}/{name}", template, _SLOT.split(text), bool(env.autoescape))

    def render(self, variables: Mapping[str, Any], holes: Mapping[str, Any]) -> str:
        """The page with `variables` (all a plain render would get) and the values of its
        holes: its blocks rendered in its own context, put into the layout."""
        template = self.template
        try:
            context = template.new_context({**self.globals, **variables}, shared=True)
            _top_level(template, context)
            made: dict[str, str] = {}
            out = []
            for index, piece in enumerate(self.pieces):
                if index % 2 == 0:
                    out.append(piece)
                    continue
                kind, _, name = piece.partition(":")
                if kind == "hole":
                    value = holes[name]
                    out.append(str(escape(value)) if self.autoescape else str(value))
                    continue
                if name not in made:
                    made[name] = "".join(context.blocks[name][0](context))
                out.append(made[name])
            return "".join(out)
        except TemplateError as exc:
            raise RenderError(f"{self.where}: {type(exc).__name__}: {exc}") from None


def _top_level(template: Template, context: Context) -> None:
    """Run the top-level code of `template` and the templates it extends (imports, `set`,
    the blocks each adds to `context`), up to the first text of the outermost layout."""
    body = cast(Generator[str, None, None], template.root_render_func(context))
    try:
        next(body, None)
    finally:
        body.close()
