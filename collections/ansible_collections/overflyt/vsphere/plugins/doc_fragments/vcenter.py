"""The vcenter option every overflyt.vsphere module takes."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  vcenter:
    description:
      - The vCenter, as the generated inventory gives it in C(overflyt_vcenters.source) or
        C(overflyt_vcenters.target).
      - Trust is C(ca_file) (chain and hostname verified against that CA), C(thumbprint) (only
        the certificate with that SHA-256 fingerprint), both, C(insecure) (nothing verified;
        reported), or none of them (the system CA store).
    type: dict
    required: true
    suboptions:
      name:
        description: The vCenter's name in the plan (used in messages).
        type: str
        required: true
      hostname:
        description: Host name or address of the vCenter.
        type: str
        required: true
      port:
        description: HTTPS port.
        type: int
        default: 443
      username:
        description: Login user.
        type: str
        required: true
      password:
        description: Login password; never logged nor returned.
        type: str
        required: true
      ca_file:
        description: PEM file of the CA that issued the vCenter's certificate.
        type: path
      thumbprint:
        description: SHA-256 fingerprint of the vCenter's certificate, C(AA:BB:...) (32 pairs).
        type: str
      insecure:
        description: Do not verify the certificate at all (explicit override).
        type: bool
        default: false
      timeout:
        description: Seconds to wait for the connection and for each API call.
        type: float
        default: 15.0
requirements:
  - overflyt (installed in the python that runs the module, with pyVmomi)
"""
