"""The evaluation phase: ensembles of predicted probabilities and the metrics of every model.

Stages: ensemble, evaluate.
"""
