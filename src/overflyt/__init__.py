"""overflyt: moves a municipality's virtual servers and network configuration into a shared
datacentre, wave by wave, with pre-checks and rollback per site."""

__version__ = "0.1.0"
