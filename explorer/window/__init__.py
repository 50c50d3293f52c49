"""The main window and its plumbing: toolbar, file handling, the notifier, the task runner, the status line."""
