"""Providers: overflyt's adapters to the systems it reads and changes (vSphere: :mod:`.vsphere`)."""
