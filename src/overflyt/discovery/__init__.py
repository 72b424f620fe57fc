"""Discovery: what is there. Reads a source vCenter (:mod:`.vcenter`) and network devices
(:mod:`.devices`: checked over SSH, read through the ``net_facts`` role, :mod:`.role_read`, their
interfaces parsed by :mod:`.interfaces`) read-only, and reads and writes estate files
(:mod:`.estate`, the planner's input; :mod:`.common`, the file as plain data for discovery's
updates, and what the two readers share; :mod:`.roundtrip`, the file rewritten with its comments
kept). Its command line is :mod:`overflyt.cli.discover`.

May import: ``plan``, ``providers.vsphere``, ``precheck.facts``/``gather``, ``ansible``,
``record`` (a throwaway run record for the role's run), ``project``, ``overflyt.errors``. Never
changes a vCenter or a device.
"""
