"""The content service: verdicts of submitted items, stored once per ``content_id``."""
