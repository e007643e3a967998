"""The serving phase: any model the pipeline trained, used on new image files outside DVC.

No stage: `python -m imgclf.classify` (the command line in `serving.classify`).
"""
