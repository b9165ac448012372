"""One module per game; each exposes ``play(config, rng, …)`` and exact RTP maths.

``rng`` is an iterator of uniform floats in [0, 1): in production
``fairness.floats(server_seed, client_seed, nonce)``, in tests anything deterministic.
"""
