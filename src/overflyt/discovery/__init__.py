"""Discovery: what is there. Reads a source vCenter (:mod:`.vcenter`) and network devices
(:mod:`.devices`) read-only, and reads and writes estate files (:mod:`.estate`, the planner's
input; :mod:`.common`, the file as plain data for discovery's updates, and what the two readers
share). Its command line is :mod:`overflyt.cli.discover`.

May import: ``plan``, ``providers.vsphere``, ``precheck.facts``/``gather``, ``ansible``,
``overflyt.errors``. Never changes a vCenter or a device.
"""
