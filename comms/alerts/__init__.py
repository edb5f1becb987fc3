"""Alerts to the office (`[alerts]`): what they say, in the site's language from the `alerts`
catalogs (`texts`), sending each once by mail and webhook (`notify`), and the campaign checks
the scheduler runs: finished, stalled, bounce and complaint rates (`campaign_checks`). May
import comms.mail, comms.publish, comms.db, comms.content and comms.core; never its siblings
comms.sending, comms.audience, comms.bounces, nor comms.web, comms.schedule or comms.cli."""
