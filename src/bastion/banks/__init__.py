"""Banks of known signals (layer 4 service).

:mod:`~bastion.banks.service` (create, list, show, rename, enable/disable, delete; entries;
hashing files into a bank), :mod:`~bastion.banks.values` (validation on every way in),
:mod:`~bastion.banks.importing` / :mod:`~bastion.banks.exporting` (CSV, TSV, JSON lines,
python-threatexchange files; :mod:`~bastion.banks.formats`), :mod:`~bastion.banks.sample`
(the built-in ``sample`` bank). Matching follows banks through the change log
(:mod:`bastion.store.change_log`).
"""
