"""Cases: one unit of human review per content item (see :mod:`.service`)."""
