"""Actions (hide, takedown, restore, suspend, preserve, report, share) through an outbox:
written with their cause, delivered at least once by workers as signed platform webhooks."""
