"""Pure domain model: values, state machines, graph and retry rules.

No I/O, no clock, no threads.
"""
