"""The player's view of rewards: the ledger history (``/api/rewards/history``). Kept out of
the wallet package so the money core imports no HTTP or auth code."""
