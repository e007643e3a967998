"""The evaluation phase: ensembles of predicted probabilities, every model's metrics with their
intervals and calibration, the model chosen on val compared with the others, and each export
against the model it copies.

Stages: ensemble, evaluate (the report reads the choice too), export (which model to export).
"""
