"""The people on the list and what they may do: sign-up with double opt-in, confirmation,
one-click unsubscribe, preferences, self-service export and erasure, the purge of unconfirmed
sign-ups and the background mailer of confirmation mails (`subscriptions`), and subscriber
lists as files: CSV import with line-numbered problems, CSV and JSON export
(`subscriber_csv`). May import comms.mail, comms.publish, comms.db, comms.content and
comms.core; never comms.sending (a sibling) or the stages above."""
