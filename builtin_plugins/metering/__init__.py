"""Metering and hard token budgets (SPEC §8): the builtin ``metering`` plugin.

* :mod:`.pricing` — the built-in price table, ``[pricing]`` overrides, cost of a call.
* :mod:`.estimator` — how many input tokens a request will cost, learnt per model.
* :mod:`.budgets` — counters per scope, reservations for calls in flight, admission.
* :mod:`.plugin` — the hook implementations that tie them to the gateway.
"""
