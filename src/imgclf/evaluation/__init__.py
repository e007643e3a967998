"""The evaluation phase: ensembles of predicted probabilities, every model's metrics with their
intervals and calibration, and the model chosen on val compared with the others.

Stages: ensemble, evaluate (the report reads the choice too).
"""
