"""The item pages' JSON-LD writer gives the standard library's indented text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from comms.publish.archive import indented_json

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["</script>", 'ä\u2028\u00a0"\\\n\t', "\x00\x1f", "💡"])
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(_DOCUMENTS)
def test_the_text_is_json_dumps_indented_by_one(document: Any) -> None:
    assert indented_json(document) == json.dumps(document, ensure_ascii=False, indent=1)


def test_keys_that_are_not_strings_are_written_as_json_writes_them() -> None:
    document = {"a": {1: [True, None], 2.5: {}}, "b": []}
    assert indented_json(document) == json.dumps(document, ensure_ascii=False, indent=1)
