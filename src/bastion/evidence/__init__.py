"""Case media encrypted at rest (:mod:`.vault`, :mod:`.keys`) and previews made in memory
(:mod:`.preview`)."""
