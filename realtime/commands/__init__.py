"""The command line: one module per command, each owning its options (`add_arguments`) and its entry
(`run`); `cli.py` assembles them, `options.py` holds the option groups several share, and
`live_show.py` puts the live show together for `run`."""
