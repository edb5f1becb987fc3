"""Sending an issue to its list: the rules that say whether it may go out (`rules`), the
services that plan, proof and send it, enqueue recipients, resume and run the retry pass
(`campaign`: plan_send, send_proofs, clear, send_to_list, retry_due, SendReport and its exit
codes), the send run of one dispatcher and N workers with retries, backoff, the bounce
breaker and policy pauses (`run`, with what it needs of the database in `ports`), an issue's
editions with one message factory each (`issue_editions`), the approval digest, "is this version
approved?" and proofs (`approval`), and the run's machinery: claim leases (`claims`), the adaptive
rate limit (`throttle`), the campaign's one send budget (`budget`) and the group-committing
outcome recorder (`recorder`). May import comms.mail, comms.publish,
comms.db, comms.content and comms.core; never comms.audience (a sibling) or the stages above."""
