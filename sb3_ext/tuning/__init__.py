"""Hyperparameter sweeps on Ray Tune (``advrl tune``): search spaces, trial reports, results.

Only :mod:`sb3_ext.tuning.sweep` needs Ray, and imports it inside its functions; the search space
(:mod:`~sb3_ext.tuning.space`) and the results (:mod:`~sb3_ext.tuning.results`) work without it,
so that a bad command line is rejected before any Ray process starts.
"""
