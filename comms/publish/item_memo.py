"""Values worked out from one content item (its feed digest, the instants it names), kept in
var/ across builds under the item's digest (`Site.digest`), so that a build after one edit works
them out for that item only.

A value is a function of the item, of comms's code and of what the caller names in `context`
(the time zone …), so an entry is named by the item's digest in a file per kind of value that
also names the code (`build_record.code_digest`) and the context: a file of other code or
another context is not read. Each file is replaced whole (temp file + rename, 0600) with
the entries one build used: two processes at once each leave a file whose every entry is right.
The folder is comms's own, like the content cache beside it: what is in it is trusted as the
code is.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from comms.core.files import write_private

# Types only: a skipped build (`build_record.skipped`) runs before the content models are imported.
if TYPE_CHECKING:
    from comms.content.models import Item, Site

#: Where the files live, under the configuration's folder.
MEMO_DIR = Path("var") / "cache" / "items"

_V = TypeVar("_V")


class ItemMemo(Generic[_V]):
    """One kind of value (`name`) of the items of `site`, kept across builds under `root` for
    the code `code` (`build_record.code_digest`) and `context`."""

    def __init__(self, root: Path, site: Site, name: str, code: bytes, context: str = "") -> None:
        self.file = root / MEMO_DIR / f"{name}.pickle"
        self.site = site
        self.head = (code, name, context)
        self._old: dict[bytes, Any] | None = None
        #: The entries this build used or made: what `save` keeps.
        self.used: dict[bytes, _V] = {}

    def _kept(self) -> dict[bytes, Any]:
        if self._old is None:
            try:
                # comms's own folder: see the module
                head, kept = pickle.loads(self.file.read_bytes())
            except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
                head, kept = None, {}
            self._old = kept if head == self.head and isinstance(kept, dict) else {}
        return self._old

    def get(self, item: Item, make: Callable[[Item], _V]) -> _V:
        """`make(item)`, kept from an earlier build of the same item if there was one."""
        key = self.site.digest(item)
        found = self.used.get(key)
        if found is None:
            kept = self._kept()
            found = kept[key] if key in kept else make(item)
            self.used[key] = found
        return found

    def save(self) -> None:
        """Replace the file with the entries this build used, if they differ from it (a
        failure only costs the next build time)."""
        if self.used.keys() == self._kept().keys():
            return
        try:
            data = pickle.dumps((self.head, self.used), protocol=5)
            write_private(self.file, data)
        except (OSError, pickle.PicklingError):
            pass
