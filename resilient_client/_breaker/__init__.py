"""The breaker room: one circuit breaker per endpoint, asked before every attempt.

``_policy`` the :class:`Breaker` policy and what trips it; ``_circuit`` the pure state
machine; ``_breaker`` the sync/async driver and the registry; ``_storage`` where state is
shared; ``_redis`` and ``_lua`` the fleet-wide Redis storage.
"""
