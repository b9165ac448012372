"""Game engines: slot, gacha, rock-paper-scissors and crash as pure functions.

Nothing in this package touches the database, Flask or Redis. An engine takes its
configuration (``config.py``), a stream of uniform floats drawn from the provably-fair
scheme (``fairness.py``) and the player's input, and returns a frozen result that holds
everything the HTTP response needs. The route that wires an engine to the wallet ledger
owns persistence, the nonce counter and the gacha pity counter; keeping the engines pure
is what lets a test replay 100 000 rounds in seconds and lets a player recompute any
past round from the revealed server seed.
"""
