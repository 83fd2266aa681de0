"""Routes by resource: tasks, steps, templates, dlq, analytics, config, health, metrics."""
