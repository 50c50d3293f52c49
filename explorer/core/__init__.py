"""The explorer's Qt-free half: app state (the controller), sessions, and the task functions the
window runs on workers (metrics, morph paths, hot reload, training runs). Tested without Qt;
an import-linter contract keeps Qt out."""
