"""Providers: overflyt's adapters to the systems it reads and changes. :mod:`.vsphere` (a package
split by job: models, session, collector, reads, changes, placement) is the only importer of
pyVmomi.

May import: ``overflyt.errors``, ``precheck.facts`` (the shape of what is read). Never imports the
plan, the cutover or Ansible: the Ansible modules in ``collections/`` call it.
"""
