"""The Pulumi side of the offline tools: the real program (``__main__.py``) run under
``pulumi.runtime.set_mocks`` for a stack file (``program_run``), and what is built on it: the
offline plan and the diff between two stacks. ``stacks`` stays free of Pulumi; this package imports
it (``python -m offline plan|diff``).
"""
