"""Monte Carlo tree search over environment snapshots."""

from sb3_ext.mcts.mcts import MCTS

__all__ = ["MCTS"]
