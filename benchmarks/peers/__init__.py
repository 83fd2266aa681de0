"""Peer engines run through tasker's linear4 protocol (see README.md)."""
