"""What the office and operators are told. Alerts (`[alerts]`): what they say, in the site's
language from the `alerts` catalogs (`texts`), sending each once by mail and webhook
(`notify`), the campaign checks the scheduler runs: finished, stalled, bounce and complaint
rates (`campaign_checks`); and `/metrics` for Prometheus, read from the database at every
scrape behind its token (`metrics`). May
import comms.mail, comms.publish, comms.db, comms.content and comms.core; never its siblings
comms.sending, comms.audience, comms.bounces, nor comms.web, comms.schedule or comms.cli."""
