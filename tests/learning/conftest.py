"""Learning tests train a tuned example end to end; they start and stop Ray themselves."""
