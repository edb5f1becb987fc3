"""HTTP: the Flask app that serves the output folder with media types, gzip, strong ETags, 304s
and WebSub Link headers (`app`), the German subscriber pages (`pages`; settings and data
links in `preferences`; page helpers in `notices`), their CSRF tokens and
per-IP rate limit (`guard`) and `comms preview` (`preview`). May import the layers below it
(comms.sending, comms.audience, comms.mail, comms.publish, comms.content, comms.core) except
comms.db: subscriber data is reached only through comms.audience. Never imports comms.schedule
(a sibling) or comms.cli."""
