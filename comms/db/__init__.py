"""The database: table definitions (`tables`), engines, Alembic migrations run on open, the
secret key and the suppression lookup (`engine`, `migrations/`), subscribers with their consent
records and the suppression list (`store`: Store, open_store; imports in
`subscriber_import`), key versions and single-use link records (`link_records`), the GDPR report and
the retention rule (`privacy`), and the send ledger of
campaigns and one delivery row per (issue, subscriber) with claims and outcomes (`ledger`),
and what publishing reads and keeps (`publishing`, over `driver` where a build must start
without SQLAlchemy).
May import comms.content and comms.core; never comms.publish (a sibling) or any stage above,
so nothing here knows about mail, the web or the scheduler."""
