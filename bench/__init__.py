"""Grid Meter benchmarks: bus efficiency, the Home Assistant core modbus peer, campus scale.

Run ``bench/run`` (``--quick`` for a short run); each figure prints as ``P<n>-<slug>: <value>``.
"""
