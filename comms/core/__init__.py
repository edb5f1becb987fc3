"""The foundation: the configuration schema and its loading (`config`, with the section models
in `settings`: built-in defaults, then comms.toml, then COMMS_* variables, then command-line
flags, every problem reported at once) and the small error hierarchy (`errors`) that the rest
raises and only the CLI turns into messages and exit codes. Imports nothing of comms."""
