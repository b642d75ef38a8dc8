"""Host-side runtime of the agility.addressing collection.

The policy model (``agility_runtime.policy``) is the collection's
``plugins/module_utils/policy.py``: the same file, so the controller and the
hosts validate policy files with the same code.
"""
