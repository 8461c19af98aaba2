"""textdqn: distributed Ape-X DQN for language tasks, on Ray.

`import textdqn` stays light: heavy libraries (ray, torch, transformers, redis) are
imported inside the modules that use them.
"""

__version__ = "0.1.0"
