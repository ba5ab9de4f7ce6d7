"""The front door: one HTTP entry point (nginx) for the local run, routing each path to the process that serves it."""
