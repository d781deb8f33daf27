"""Child sex trafficking in classified ads: disguised contacts, explainable indicators, networks.

Pure and storage-free (layer 4 domain code that uses only ``bastion.signals``): contact
extraction (:mod:`.contacts`), the lexicon and indicator scorer (:mod:`.lexicon`,
:mod:`.scoring`), ad networks (:mod:`.networks`) with InfoShield-style templates
(:mod:`.template`), a synthetic ad generator for evaluation (:mod:`.synthetic`) and the
logistic-regression refit (:mod:`.fit`). :mod:`.service` ties them together for adapters.
"""
