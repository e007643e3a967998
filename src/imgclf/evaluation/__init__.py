"""The evaluation phase: every model's temperature and the ensemble of predicted probabilities,
every model's metrics with their intervals and calibration, the model chosen on val compared
with the others and the one to export, and each export against the model it copies; and
two runs' test predictions side by side (`runcomparison`, for `imgclf compare REV_A REV_B`).

Stages: ensemble, evaluate (export and the report read what it decides), score_export.
"""
