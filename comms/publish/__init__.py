"""Everything a reader sees, made from content: Jinja2 templates with Babel catalogs and the
Formatter for dates and labels (`templating`), the issue rendered once as e-mail HTML (MJML) and
plain text (`render`, `plaintext`), the web archive (`archive`), RSS/Atom/JSON Feed and
iCalendar files (`feeds`, `feed_entry`, with change history in `feed_state`), the producers'
one input (`producer`), the build that writes only changed files atomically (`build`), the
e-mail checks of `comms check` (`quality`) and publishing now, with WebSub pings (`refresh`:
`publish_now`, which every caller uses). May import comms.content and comms.core;
never comms.db (a sibling) or any stage above."""
