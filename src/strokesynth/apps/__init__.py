"""Applications of trained models, apart from the paper recipes: ``predict`` (new cases),
``export`` (ONNX, TorchScript), scoring predictions made anywhere, and ``describe`` (networks,
parameters, FLOPs). They sit above the recipes (they load what a recipe trained) and below the
reports and the command line."""
