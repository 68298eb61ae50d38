"""The command line and its sub-commands: run, dream, render, eval, bench, soak, export."""
