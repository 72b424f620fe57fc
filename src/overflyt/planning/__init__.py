"""Planning: proposes waves from an estate (:mod:`.waves`, ``overflyt plan waves``; its steps in
:mod:`.options`, :mod:`.units`, :mod:`.placement`, :mod:`.estimates`, :mod:`.proposal`,
:mod:`.render`) and owns the one VM scheduling rule (:mod:`.batches`) that the cutover also uses,
so an estimate and a real run agree, and the one estimate of what moving VMs takes (:mod:`.cost`),
which the cutover also checks a wave's window with.

May import: ``plan.model``, ``discovery.estate``, ``overflyt.errors``. Pure code: contacts nothing.
"""
