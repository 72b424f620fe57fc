"""Discovery: what is there. Reads a source vCenter (:mod:`.vcenter`) and network devices
(:mod:`.devices`) read-only, and reads and writes estate files (:mod:`.estate`, the planner's
input).

May import: ``plan``, ``providers.vsphere``, ``precheck.facts``/``gather``, ``ansible``,
``overflyt.errors``. Never changes a vCenter or a device.
"""
