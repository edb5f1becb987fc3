"""Links and images of content files: malformed URLs and addresses, dead internal links,
missing image files, third-party resources — each an error at its file and line; images over
the size budget are warnings."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from comms.content import urls
from comms.content.front_matter import split
from comms.content.markup import markdown_unsanitised
from comms.content.models import Site
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError
from comms.publish.archive import static_files
from comms.publish.build import collect
from comms.publish.images import budget_problem, static_file, static_path
from comms.publish.producer import Build
from comms.publish.state import ScratchState

if TYPE_CHECKING:
    from comms.publish.check_cache import CheckCache

#: The pages `comms serve` answers besides the built files (token pages take a suffix).
SERVED = (urls.SUBSCRIBE,)
SERVED_PREFIXES = (urls.confirm_path(""), urls.unsubscribe_path(), urls.preferences_path())
#: Schemes a link may have (the sanitiser drops every other one, leaving a dead `<a>`).
SCHEMES = ("http", "https", "mailto")
#: The only `mailto:` fields every mail client fills in the same way.
MAILTO_FIELDS = frozenset({"subject", "body"})
#: Front matter keys whose value is a link, and those whose value is an embedded image.
LINK_KEYS = frozenset({"url", "registration", "online"})
EMBED_KEYS = frozenset({"src"})
#: An e-mail address written as text (in the body), to validate like a mailto: link.
_ADDRESS_RE = re.compile(r"(?<![\w.@/:+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*(?![\w@-])")
_KEYS = "|".join(sorted(LINK_KEYS | EMBED_KEYS))
_VALUE = r"""("[^"]*"|'[^']*'|[^\s,}'"][^\s,}]*)"""
#: `url: …` as a block mapping key (in a list too), and `{src: …}` in a flow mapping.
_BLOCK_KEY_RE = re.compile(rf"^\s*(?:-\s+)?({_KEYS})\s*:\s*{_VALUE}")
_FLOW_LINE_RE = re.compile(r"^\s*(?:-\s+)?(?:[\w-]+\s*:\s*)?[{\[]")
_FLOW_KEY_RE = re.compile(rf"[{{,]\s*({_KEYS})\s*:\s*{_VALUE}")
_LINKED = re.compile(r"<(?:a|img)\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    """One URL in a content file: where it is and whether it is embedded (loaded) or linked."""

    url: str
    line: int
    embedded: bool
    #: From the front matter, whose URL fields the model checks for syntax already.
    front: bool = False


class _Collect(HTMLParser):
    """Every href (links) and src (embedded resources) of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "href" and tag == "a":
                self.found.append((value.strip(), False))
            elif name in ("src", "poster", "data"):
                self.found.append((value.strip(), True))


def _line(lines: list[str], start: int, needle: str, after: int = 0) -> int:
    """The file line of the first body line from index `after` that contains `needle`
    (`start` is the file line of the body's first line)."""
    for offset in range(after, len(lines)):
        if needle and needle in lines[offset]:
            return start + offset
    return start if after == 0 else _line(lines, start, needle)


def _body_references(body: str, body_line: int) -> Iterator[Reference]:
    # Unsanitised on purpose: the sanitiser silently drops what this check must name.
    try:
        html = markdown_unsanitised(body)
    except ValueError:
        return  # a body too costly to render: the reader reports it at its line
    scan = _Collect()
    scan.feed(html)
    lines = body.splitlines()
    seen: dict[str, int] = {}
    for url, embedded in scan.found:
        # A URL used twice is reported at each of its lines, not twice at the first.
        line = _line(lines, body_line, url, seen.get(url, 0))
        seen[url] = line - body_line + 1
        yield Reference(url, line, embedded)
    text = _LINKED.sub(" ", html)
    for number, source in enumerate(lines, start=body_line):
        for match in _ADDRESS_RE.finditer(source):
            address = match.group()
            if f"mailto:{address}" not in source and address in text:
                yield Reference(f"mailto:{address}", number, False)


def _front_references(front: str, offset: int) -> Iterator[Reference]:
    """The link and image values of the front matter (block or flow style), with their lines.

    A scan of the lines rather than a second YAML parse: it costs a fraction, and a value the
    scan misreads is still checked by the model.
    """
    for number, line in enumerate(front.splitlines(), start=offset):
        if line.lstrip().startswith("#"):
            continue
        block = _BLOCK_KEY_RE.match(line)
        flow = _FLOW_KEY_RE.finditer(line) if _FLOW_LINE_RE.match(line) else iter(())
        for match in [block] if block else flow:
            value = match.group(2).strip().strip("\"'").strip()
            if value:
                yield Reference(value, number, match.group(1) in EMBED_KEYS, front=True)


def file_references(path: Path, cache: CheckCache | None = None) -> list[Reference]:
    """The links and embedded resources of one content file (none if it cannot be split);
    with `cache`, those found before in the same bytes."""
    try:
        raw = path.read_bytes()
        # As read_text reads it: every line end as "\n".
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, UnicodeDecodeError):
        return []
    if cache is None:
        return _text_references(path, text)
    found: list[Reference] = cache.result(path, raw, "links", lambda: _text_references(path, text))
    return found


def _text_references(path: Path, text: str) -> list[Reference]:
    parts = split(text.removeprefix("\ufeff"), path)
    if isinstance(parts, ContentError):
        return []
    front, body, body_line = parts
    return [*_body_references(body, body_line), *_front_references(front, 2)]


class LinkChecker:
    """Checks references against one site: its built files, static files and allowed hosts."""

    def __init__(self, config: Config, site: Site, cache: CheckCache | None = None) -> None:
        self.config = config
        #: Where the references of files read before are kept (`comms check`), if anywhere.
        self.cache = cache
        self.static_dir = config.settings.render.static_dir.strip("/")
        self.static = set(static_files(config))
        try:
            # The paths alone: no page, mail or feed is rendered (their bodies are deferred).
            self.produced: set[str] | None = set(collect(Build(config, site, ScratchState())))
        except (CommsError, ValueError):
            # The build cannot even list its files (its own error names why); internal links
            # go unchecked. A page or mail that fails to render fails where it is rendered: the
            # e-mail checks report it, and the build.
            self.produced = None
        self.host = config.host.lower()
        self.embed_hosts = {self.host, *config.settings.render.embed_hosts}

    def problems(self, paths: Iterable[Path]) -> list[ContentError]:
        """Every link and image error of the files `paths`."""
        errors: list[ContentError] = []
        for path in paths:
            for ref in file_references(path, self.cache):
                message = self.check(ref)
                if message is not None:
                    errors.append(ContentError(path, ref.line, message))
                elif (warning := self.budget(ref)) is not None:
                    errors.append(ContentError(path, ref.line, warning, warning=True))
        return list(dict.fromkeys(errors))

    def budget(self, ref: Reference) -> str | None:
        """A warning for an embedded image of the site's own that is over the size budget."""
        if not ref.embedded:
            return None
        site_path = static_path(self.config, ref.url)
        if site_path is None or site_path not in self.static:
            return None
        return budget_problem(static_file(self.config, site_path))

    def config_problems(self) -> list[ContentError]:
        """The brand's images (`[brand]` logo, header image, partners' logos): each file must
        exist, its host be allowed; reported at its line in comms.toml."""
        brand = self.config.settings.brand
        images = [("brand.logo", "logo", brand.logo)]
        images.append(("brand.header_image", "header_image", brand.header_image))
        images += [("brand.partners.logo", "logo", p.logo) for p in brand.partners]
        path = self.config.path or self.config.root / "comms.toml"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        problems = []
        for field, key, src in images:
            if not src:
                continue
            url = src if "://" in src else "/" + src.lstrip("/")
            message = self.check(Reference(url, 1, embedded=True))
            if message is None:
                continue
            line = next(
                (n for n, text in enumerate(lines, 1)
                 if text.strip().startswith(key) and src in text),
                1,
            )  # fmt: skip
            problems.append(ContentError(path, line, message, field=field))
        return problems

    def check(self, ref: Reference) -> str | None:
        """What is wrong with one reference, or None."""
        url = ref.url
        if not url or url.startswith("#"):
            return None
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if ref.front and not ref.embedded and scheme not in ("http", "https"):
            return None  # the field's own error names it
        if scheme == "mailto" and not ref.embedded:
            return _mailto(url)
        if scheme in ("http", "https"):
            host = (parts.hostname or "").lower()
            if not host or (
                "." not in host and host != "localhost" or parts.netloc.startswith(":")
            ):
                return f"malformed URL '{url}': expected https://host/path"
            if host == self.host:
                return self._internal(url, parts.path, ref.embedded)
            if ref.embedded and host not in self.embed_hosts:
                return (
                    f"'{url}' is loaded from {host}: a third party would see every reader; "
                    f"copy the file into {self.static_dir}/ or add the host to "
                    "render.embed_hosts"
                )
            return None
        if scheme:
            close = difflib.get_close_matches(scheme, SCHEMES, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}:'?" if close else " (use https:, http: or mailto:)"
            return f"malformed URL '{url}': unknown scheme '{parts.scheme}:'{hint}"
        if url.startswith("//"):
            return f"'{url}' has no scheme: write https:{url}"
        if not url.startswith("/"):
            looks_like_host = "." in url.split("/")[0]
            hint = f"https://{url}" if looks_like_host else f"/{url}"
            return f"relative URL '{url}' breaks in e-mails: write {hint}"
        return self._internal(url, parts.path, ref.embedded)

    def _internal(self, url: str, path: str, embedded: bool) -> str | None:
        site_path = unquote(path).lstrip("/")
        if embedded:
            if site_path in self.static or (self.produced and site_path in self.produced):
                return None
            return f"image file not found: {self.static_dir}/{site_path} (from '{url}')"
        if self.produced is None or _served(site_path, self.produced):
            return None
        return f"link to a page the build does not produce: '{url}'"


def _served(site_path: str, produced: set[str]) -> bool:
    """Whether the site answers a path: a built file or page, or a page of `comms serve`."""
    if site_path in ("", "index.html") or site_path in produced:
        return True
    folder = site_path.rstrip("/") + "/"
    if folder + "index.html" in produced:
        return True
    return site_path in SERVED or any(
        site_path.startswith(prefix) and site_path != prefix for prefix in SERVED_PREFIXES
    )


def _mailto(url: str) -> str | None:
    """What is wrong with a mailto: link (its addresses, its fields), or None."""
    # Imported here: only a mailto: link needs the validator (start-up of every check).
    from email_validator import EmailNotValidError, validate_email

    parts = urlsplit(url)
    for address in filter(None, unquote(parts.path).split(",")):
        try:
            validate_email(address.strip(), check_deliverability=False)
        except EmailNotValidError as exc:
            return f"malformed e-mail address '{address.strip()}': {exc}"
    if not parts.path:
        return f"'{url}' has no address"
    fields = sorted({key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    extra = [key for key in fields if key not in MAILTO_FIELDS]
    if extra:
        return (
            f"mailto link with {', '.join(repr(k) for k in extra)}: mail clients handle only "
            "'subject' and 'body' alike"
        )
    return None


def check_links(config: Config, site: Site, paths: Iterable[Path]) -> list[ContentError]:
    """The link and image errors of the content files `paths`."""
    return LinkChecker(config, site).problems(paths)
