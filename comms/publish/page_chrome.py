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

The top-level code of the chain runs once, too, when all it sets are macros imported with
context (`{% from "_macros.html.j2" import figure with context %}`): each page's blocks get
the blocks and macros of that run (made from what the pages share) instead of making the
macro module again, a third of an item page's time outside its blocks. Imported macros read
their page's values from their arguments, as the archive's do; a page whose blocks fail or
show a hole that way is made again with its own top-level run, as before.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from typing import Any, cast

from jinja2 import Template, TemplateError
from jinja2.runtime import Context, Macro
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


class _Top:
    """What the top-level code of a template chain left in a context: the blocks of every
    template of the chain and the names it set (macros imported with context)."""

    def __init__(self, context: Context) -> None:
        self.blocks = {name: list(found) for name, found in dict.items(context.blocks)}
        self.vars = dict(context.vars)
        self.exported = set(context.exported_vars)

    def put(self, context: Context) -> None:
        """Give `context` what the top-level code would have left in it."""
        context.blocks = {name: list(found) for name, found in self.blocks.items()}
        context.vars.update(self.vars)
        context.exported_vars.update(self.exported)


class Chrome:
    """The layout of template `name` in `templates/<folder>/`, in `language`, cut at its
    slots (None from `make` when it cannot be rendered on its own)."""

    def __init__(
        self,
        where: str,
        template: Template,
        pieces: list[str],
        autoescape: bool,
        top: _Top | None = None,
    ) -> None:
        #: The template's path, for errors (`templates/web/event.html.j2`).
        self.where = where
        self.template = template
        #: Text, slot, text, slot … text.
        self.pieces = pieces
        self.autoescape = autoescape
        #: The top-level run's blocks and macros for every page (None: each page runs it).
        self.top = top
        #: The template's globals as one dict: a page's context is them and its variables
        #: (Jinja would copy them out of their ChainMap again for every page).
        self.globals = dict(template.globals)

    @classmethod
    def make(
        cls, folder: str, name: str, language: str, shared: Mapping[str, Any]
    ) -> Chrome | None:
        """The layout rendered with `shared` (what its pages share, holes for the rest);
        None when it reads more than that."""
        template = environment(folder, language).get_template(name)
        return cls.of(template, f"templates/{folder}/{name}", shared)

    @classmethod
    def of(cls, template: Template, where: str, shared: Mapping[str, Any]) -> Chrome | None:
        """The layout of `template` (`where`: its path, for errors) rendered with `shared`;
        None when it reads more than that."""
        context = template.new_context(dict(shared))
        context.blocks = _Slots(context.blocks)
        top = None
        try:
            body = template.root_render_func(context)
            first = next(body, "")  # the top-level code has run: its blocks and names
            if all(isinstance(value, Macro) for value in context.vars.values()):
                top = _Top(context)
            text = first + "".join(body)
        except TemplateError:
            return None  # it reads a page's own variable: its pages are rendered whole
        autoescape = bool(template.environment.autoescape)
        return cls(where, template, _SLOT.split(text), autoescape, top)

    def render(self, variables: Mapping[str, Any], holes: Mapping[str, Any]) -> str:
        """The page with `variables` (all a plain render would get) and the values of its
        holes: its blocks rendered in its own context, put into the layout."""
        if self.top is not None:
            try:
                page = self._render(variables, holes, self.top)
            except TemplateError:
                page = None  # an imported macro read what only the page has: as before
            if page is not None:
                return page
        try:
            page = self._render(variables, holes, None)
        except TemplateError as exc:
            raise RenderError(f"{self.where}: {type(exc).__name__}: {exc}") from None
        assert page is not None
        return page

    def _render(
        self, variables: Mapping[str, Any], holes: Mapping[str, Any], top: _Top | None
    ) -> str | None:
        """The page, its top-level code run for it (`top` None) or taken from `top`; None
        when a block shows a slot (a macro of `top` read a hole)."""
        template = self.template
        context = template.new_context({**self.globals, **variables}, shared=True)
        if top is None:
            _top_level(template, context)
        else:
            top.put(context)
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
                block = "".join(context.blocks[name][0](context))
                if top is not None and "\x00" in block:
                    return None
                made[name] = block
            out.append(made[name])
        return "".join(out)


def _top_level(template: Template, context: Context) -> None:
    """Run the top-level code of `template` and the templates it extends (imports, `set`,
    the blocks each adds to `context`), up to the first text of the outermost layout."""
    body = cast(Generator[str, None, None], template.root_render_func(context))
    try:
        next(body, None)
    finally:
        body.close()
