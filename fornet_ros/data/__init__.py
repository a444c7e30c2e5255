"""Package data, no code: the demo clip (``clips/``). The datasets and transforms are
:mod:`fornet_ros.training.datasets` and :mod:`fornet_ros.training.transforms`."""
