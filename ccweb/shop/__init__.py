"""The shop (SPEC §3 "Shop and economy"): catalog, unified purchase, receipts, settlement.

Modules: ``models`` (tables), ``catalog`` (the cached player catalog), ``products``
(operator CRUD), ``purchase`` (the one purchase path), ``receipts`` and ``keyring``
(integrity hash, versioned HMAC keys), ``settlement`` (conversion callbacks) and
``settlement_stub`` (the stand-in for the external payment provider).
"""
