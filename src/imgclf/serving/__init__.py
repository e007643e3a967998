"""The serving phase: any model the pipeline trained, used on new image files outside DVC.

Stage `export` (`serving.export`: a SavedModel taking image bytes, LiteRT float32/int8 files;
`serving.exported` runs them), and `python -m imgclf.classify` (the command line in
`serving.classify`), which runs model files and exports alike.
"""
