"""What happens next: create tasks, find ready steps, enqueue them, apply results, retry, finalize.

Every function here is a single pass over one store transaction; loops and threads live in
``tasker.worker`` and ``tasker.runtime``.
"""
