"""People who sign in to the review UI: users, roles and sessions (see :mod:`.service`)."""
