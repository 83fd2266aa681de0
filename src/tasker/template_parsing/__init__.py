"""How one parsed YAML document becomes a ``TaskTemplate``: typed field readers, step parsing
and the template-wide checks. ``tasker.templates`` adds files, YAML and line numbers on top.

Nothing here raises on bad input: every problem is recorded in a ``Report`` with the YAML path
it concerns, so that all of them can be shown together.
"""
