"""
How matte_ros is measured: benchmark rigs, evaluation, data-set readers, DDS companions.

Nothing here is imported by the node (``matte_node``).  ``matte-ros bench`` and
``matte-ros eval`` (in :mod:`matte_ros.cli`) and the demo use these modules: the bench
rig (:mod:`.benchmark`, :mod:`.bench_graph`), scoring and data sets (:mod:`.scoring`,
:mod:`.datasets`), the synthetic scene (:mod:`.demo_sequence`), process probes, and
the processes that stand around the node on a test graph (:mod:`.player`,
:mod:`.recorder`, :mod:`.echo`, :mod:`.processes`).
"""
