"""The main window and its plumbing: file handling, the notifier, the task runner, the status line."""
