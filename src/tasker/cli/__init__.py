"""The tasker command line."""
