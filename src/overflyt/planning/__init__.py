"""Planning: proposes waves from an estate (:mod:`.waves`, ``overflyt plan waves``) and owns the
one VM scheduling rule (:mod:`.batches`) that the cutover also uses, so an estimate and a real
run agree.

May import: ``plan.model``, ``discovery.estate``, ``overflyt.errors``. Pure code: contacts nothing.
"""
