"""Rollout side of Ape-X: exploration schedules, the n-step adder, rollout workers.

Modules:
  exploration.py  per-actor ε (ε_i = ε^(1 + α·i/(N−1))), ε schedules, vectorized ε-greedy.
  nstep.py        NStepAdder: vector-env steps in, n-step TransitionBatch out.

Nothing here imports Ray; `textdqn/cluster/` turns the workers into Ray actors.
"""
