"""The stamp of what a build reads from a database server (the started campaigns and the feed
history), taken with one query through psycopg alone.

A `comms build` that nothing changed for is skipped before it imports the build or opens the
store (comms.publish.build_record). An SQLite database shows a change in its files' stamps; a
server only answers a query, and SQLAlchemy, with the psycopg dialect, takes a quarter of a
second to import. So this module connects with psycopg directly, with the arguments
SQLAlchemy would give it (comms.core.database_url.psycopg_arguments). The publishing state
(comms.db.publishing) runs the same query on the build's own connection, and a build keeps its
stamps only where both answers agree. Where the build's connection goes through the engine,
a URL read two ways can never skip a build wrongly; where it is psycopg's too (a current
schema, comms.db.driver), both read the URL alike, and the engine's reading is what
tests/test_database_url.py holds `psycopg_arguments` to.
"""

from __future__ import annotations

from comms.core.database_url import psycopg_connection

#: A digest of the rows the build reads: every campaign's slug (`sent_issues`) and every feed
#: item's record (`feed_rows`), ordered, with control characters between the fields. Times in
#: UTC to the microsecond in a fixed format, whatever the session's time zone and DateStyle;
#: no "%", which a driver could take for a parameter. Needs PostgreSQL 11 or later (sha256).
#: What the build reads from the server and this query must stay the same rows (a test
#: compares the columns).
STAMP_SQL = """
SELECT encode(sha256(convert_to(concat(
    coalesce((SELECT string_agg(slug, chr(31) ORDER BY slug) FROM campaigns), ''),
    chr(30),
    coalesce((
        SELECT string_agg(
            concat_ws(chr(31), uid, digest, sequence, to_char(seen AT TIME ZONE 'UTC', {TIME}),
                      coalesce(to_char(changed AT TIME ZONE 'UTC', {TIME}), '-')),
            chr(29) ORDER BY uid)
        FROM feed_items), '')
), 'UTF8')), 'hex')
""".replace("{TIME}", "'YYYY-MM-DD HH24:MI:SS.US'")

#: Seconds the stamp waits for a connection (psycopg's least) where the URL sets none: the
#: build's own connection waits longer before it reports a server that is away.
CONNECT_TIMEOUT = 2


def stamp_text(digest: str) -> str:
    """The stamp for the digest STAMP_SQL returned (its prefix keeps it apart from the stamps
    of files that `build_record` takes)."""
    return f"server:{digest}"


def server_stamp(url: str) -> str | None:
    """The stamp of the server's state at `url`; None where psycopg cannot take it (another
    database, a URL only SQLAlchemy reads, no psycopg, the server away, no schema yet)."""
    try:
        conn = psycopg_connection(url, CONNECT_TIMEOUT)
        if conn is None:
            return None
        with conn:
            row = conn.execute(STAMP_SQL).fetchone()
    except Exception:  # a stamp only saves work: without one, the build reads the site
        return None
    return stamp_text(row[0]) if row is not None and isinstance(row[0], str) else None
