"""Hypothesis: random methods, paths, tokens, form fields and bodies against every subscriber
endpoint never give a 500 (and never raise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .webkit import CSRF_RE, Web, open_web

pytestmark = pytest.mark.database

FIELDS = ["email", "name", "topics", "regions", "website", "csrf_token", "language", "really",
          "List-Unsubscribe"]  # fmt: skip
ROUTES = ["/subscribe", "/confirm/{}", "/confirm/{}/resend", "/unsubscribe/{}",
          "/preferences/{}", "/preferences/{}/export", "/preferences/{}/delete", "/healthz",
          "/{}"]  # fmt: skip

CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
]


@pytest.fixture
def fuzz_web(tmp_path: Path) -> Iterator[tuple[Web, list[str], list[str]]]:
    """One app for every example: a confirmed and a pending person, real tokens and CSRF."""
    folder = tmp_path
    with open_web(folder, subscribe={"rate_limit": 1_000_000}) as web:
        web.sign_up("aktiv@example.org")
        web.client.post(web.confirm_path())
        web.sign_up("wartet@example.org")
        active = web.store.find("aktiv@example.org")
        assert active is not None
        pending = web.confirm_path().rsplit("/", 1)[1]
        prefs = web.subs.preferences_token(active)
        tokens = [pending, prefs, web.subs.unsubscribe_token(active), prefs[:-3], "x.y.z"]
        csrf = [web.csrf(), CSRF_RE.findall(web.client.get(f"/preferences/{prefs}").text)[0]]
        yield web, tokens, csrf


texts = st.text(max_size=60)


@pytest.mark.slow
@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_input_gives_a_500(
    data: st.DataObject, fuzz_web: tuple[Web, list[str], list[str]]
) -> None:
    web, tokens, csrf = fuzz_web
    token = data.draw(st.one_of(st.sampled_from(tokens), texts.filter(bool)))
    path = data.draw(st.sampled_from(ROUTES)).format(quote(token, safe=""))
    method = data.draw(st.sampled_from(["GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE"]))
    special = ["One-Click", "yes", "sprache", "weser-ems", "en", "a@example.org", *csrf]
    values = st.one_of(texts, st.sampled_from(special))
    names = st.one_of(st.sampled_from(FIELDS), texts)
    form = data.draw(
        st.dictionaries(names, st.one_of(values, st.lists(values, max_size=3)), max_size=6)
    )
    kind = data.draw(st.sampled_from(["urlencoded", "multipart", "raw"]))
    if kind == "raw":
        body = data.draw(st.binary(max_size=200))
        ctype = data.draw(st.sampled_from(CONTENT_TYPES))
        response = web.client.open(path, method=method, data=body, content_type=ctype)
    elif kind == "multipart":
        response = web.client.open(path, method=method, data=form,
                                   content_type="multipart/form-data")  # fmt: skip
    else:
        response = web.client.open(path, method=method, data=form)
    assert response.status_code < 500, (method, path, form, response.status_code)
    assert not 300 <= response.status_code < 400 or not path.startswith("/unsubscribe/")
