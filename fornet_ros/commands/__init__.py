"""The ``fornet`` sub-commands defined over the library: one module per command, each with
``add_arguments(parser)`` and ``run(args)`` (``cli.py``'s table names them), and the options every
command that runs a model shares (:mod:`.model_options`). A command parses, checks and prints; the work
is the library's. ROS modules are imported inside ``run`` only (``bag play``, ``demo``, ``bench-node``),
so the ROS-free commands never load rclpy."""
