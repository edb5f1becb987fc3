"""What happened, in numbers that name nobody: the report of one issue's send (`issue_report`),
the audience over time (`audience_report`), counting archive views and unsubscribes per issue
without cookies or addresses (`counting`), optional per-link click counts (`clicks`) and the
charts of both reports as SVG files with data tables (`charts`). May import comms.mail,
comms.publish, comms.db, comms.content and comms.core; never comms.sending, comms.audience or
comms.bounces (siblings) or the stages above."""
