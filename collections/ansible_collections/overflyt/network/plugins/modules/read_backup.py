"""overflyt.network.read_backup: the documentation; the action plugin of the same name does the work."""

from __future__ import annotations

DOCUMENTATION = r"""
module: read_backup
author: overflyt engineers
version_added: 0.2.0
short_description: Read a device's backup file, refusing a missing or altered one
description:
  - >-
    Reads O(path) on the controller and returns its text. When O(sha256) is given, a file whose
    sha256 is a different one fails the task (the backup was altered since it was taken); a
    missing file fails it too. The message names the file, the host and both sha256.
  - >-
    Runs in the task's worker on the controller (an action plugin): no module interpreter starts,
    unlike M(ansible.builtin.stat). Changes nothing, also in check mode. It never touches the
    device, so a task of a network_cli host starts no C(ansible-connection) process for it.
options:
  path:
    description: Controller path of the backup file (as P(overflyt.network.running_config#module) saved it).
    type: path
    required: true
  sha256:
    description: The file's sha256 (hex) when it was taken; empty checks nothing.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Refuse a missing or altered backup, else read it
  overflyt.network.read_backup:
    path: "{{ net_restore_backup_file }}"
    sha256: "{{ net_restore_backup_sha256 }}"
  register: backup
"""

RETURN = r"""
content:
  description: The file's text (UTF-8).
  type: str
  returned: success
sha256:
  description: sha256 (hex) of the file's bytes.
  type: str
  returned: success
"""
