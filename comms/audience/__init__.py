"""The people on the list and what they may do: sign-up with double opt-in, confirmation,
one-click unsubscribe, preferences, the purge of unconfirmed sign-ups and the retention of
ended subscriptions (`subscriptions`), links by purpose with export and erasure through a
mailed single-use link and "log out all links" (`data_requests`), the background thread that
decides web sign-ups and sends confirmation mails (`mailer`), and subscriber
lists as files: CSV import with line-numbered problems, CSV and JSON export
(`subscriber_csv`). May import comms.mail, comms.publish, comms.db, comms.content and
comms.core; never comms.sending (a sibling) or the stages above."""
