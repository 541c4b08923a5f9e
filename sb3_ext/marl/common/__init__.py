"""Machinery shared by the multi-agent algorithms: the replay buffer, the SB3 contract, evaluation."""
