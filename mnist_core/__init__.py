"""Shared core of the MNIST teaching app: data, models, training, registry, inference.

Importing the package is cheap; TensorFlow is imported only by the modules that train
or load models.
"""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) is noise for a classroom.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
