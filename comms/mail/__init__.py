"""Mail on the wire: one issue's message bytes built once and personalised per recipient, with
list headers, optional DKIM and the separate transactional mail (`message`), signed link
tokens (`tokens`), the transports behind a URL (`transports`: SMTP in `smtp`, Brevo's HTTP API
in `http_api`, .eml files, memory; their schemes in comms.core.transport_url) and the
classification of every failed reply as temporary, permanent or a policy rejection (`replies`,
by the one table of SMTP and RFC 3463 codes in `status_codes`, which DSN parsing in
comms.bounces shares). May import comms.publish (the rendered issue and
its placeholders), comms.db, comms.content and comms.core; never the stages above it."""
