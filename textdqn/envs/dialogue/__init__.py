"""Task-oriented dialogue: domains as data files, a generated knowledge base, user goals.

The agenda-based user simulator and the `textdqn/Dialogue-v0` environment build on these.
"""
