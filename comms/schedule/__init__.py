"""Unattended runs: what to schedule (`plan`: send jobs from ready issues with a send_at, and
sends held back as stale), the job functions that call the same services as the CLI (`jobs`),
the APScheduler wiring with its listeners and the overview for `comms schedule` (`runner`), and
the lease that lets one process per database run the scheduler (`lease`). May import
comms.sending, comms.audience, comms.mail, comms.publish, comms.db, comms.content and
comms.core; never comms.web (a sibling) or comms.cli."""
