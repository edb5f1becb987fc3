"""Sending an issue to its list: the campaign service that enqueues recipients, sends, resumes
and runs the retry pass (`campaign`: prepare, send, send_issue, retry_due, SendReport and its
exit codes), the send run of one dispatcher and N workers with retries, backoff, the bounce
breaker and policy pauses (`run`), and its machinery: the adaptive rate limit, run identity and
the group-committing ledger recorder (`throttle`). May import comms.mail, comms.publish,
comms.db, comms.content and comms.core; never comms.audience (a sibling) or the stages above."""
