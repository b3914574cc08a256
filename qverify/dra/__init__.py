"""Dynamic resource allocation: a pure-JAX network environment, a branching DQN, baselines."""
