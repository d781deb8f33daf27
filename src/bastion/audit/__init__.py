"""The audit log: append-only, hash-chained (see :mod:`bastion.audit.service`)."""
