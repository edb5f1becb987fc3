"""Bounces and complaints: VERP reading, DSN/ARF parsing, the bounce mailbox, policy, webhooks.

Owns what comes back after a send: reports in the bounce mailbox (IMAP or Maildir) and the
HTTP API provider's webhook events, turned into suppressions through the store. Sits beside
`comms.sending` and `comms.audience`: it may import `comms.mail`, `comms.db`, `comms.publish`,
`comms.content` and `comms.core`; `comms.web`, `comms.schedule` and `comms.cli` may import it.
"""
