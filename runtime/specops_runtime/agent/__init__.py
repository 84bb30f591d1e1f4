"""The in-pod task agent: validates a Task, serves progress, dispatches to a backend, reports a result."""
