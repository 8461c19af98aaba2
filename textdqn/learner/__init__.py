"""The learner: losses (pure functions), Learner, the training loop and checkpoints."""
