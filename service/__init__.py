"""The case service: one module through which the CLI, the demo, the web pages and the calendar
sweep open, answer and inspect cases."""
