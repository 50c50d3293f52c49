"""Training from the app: the trainer dock, its form, the child process and run watching."""
