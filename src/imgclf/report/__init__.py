"""The report phase: the Markdown report with its models table and figures, built from the
metrics, predictions and training curves.

Stage: report.
"""
