"""``make chaos``: the real pipeline under crashes, outages, lost replies, rebalances and poison.

Run as ``python -m chaos`` (every fault, several minutes each) or ``python -m chaos --short``
(the CI list). Each fault prints one row of the reconciliation table; see ``chaos.harness``.
"""
