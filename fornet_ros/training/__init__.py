"""Training and scoring (torch; no ROS): the trainer (:mod:`.train`), its losses (:mod:`.losses`), the
datasets and joint image+label transforms (:mod:`.datasets`, :mod:`.transforms`), the one
``evaluate`` shared by training, ``fornet eval``, bag eval and the demo (:mod:`.evaluation`), and the
segmentation metrics (:mod:`.metrics`). Builds on :mod:`fornet_ros.model` and :mod:`fornet_ros.inference`."""
