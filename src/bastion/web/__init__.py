"""The review UI: server-rendered pages under ``/ui`` (see :mod:`.app`)."""
