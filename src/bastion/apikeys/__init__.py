"""API keys: creation, listing, expiry, revocation and authentication (see :mod:`.service`)."""
