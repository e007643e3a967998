"""The models phase: architectures and pretrained backbones, training (resumable, distributed),
features and logistic regression, fine-tuning, predictions over a pack, and the model card
(`modelcard.ModelCard`) every trained artifact carries.

Stages: backbone, features@split, logreg, cnn@seed, finetune, predict_*.
"""
