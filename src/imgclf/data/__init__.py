"""The data phase: find, label and decode-check the images, split them, and pack them into
HDF5 with their channel means; `inputs` streams the packs to training as tf.data.

Stages: index, split, pack@{train,val,test}, means (and the backbone's pretraining, which
reuses them on its own source folder).
"""
