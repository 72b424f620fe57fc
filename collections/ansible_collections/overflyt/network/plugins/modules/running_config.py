"""overflyt.network.running_config: the documentation; the action plugin of the same name does the work."""

from __future__ import annotations

DOCUMENTATION = r"""
module: running_config
author: overflyt engineers
version_added: 0.2.0
short_description: Read a device's running configuration, and optionally save it as its backup
description:
  - >-
    Sends O(command) over the device's network_cli persistent connection and returns what the
    device shows, normalised as P(overflyt.network.config_normalise#filter) does, and its sha256.
  - >-
    With O(show), sends those commands first, over the same connection in the same task, and
    returns what the device showed for each in RV(shown): one task per device and step, so Ansible
    starts one C(ansible-connection) process for it instead of one per task.
  - >-
    Every command sent, O(command) included, must be a C(show) command; anything else fails the
    task before anything is sent.
  - >-
    Runs in the task's worker on the controller (an action plugin): no module interpreter starts,
    unlike M(ansible.netcommon.cli_command). Read-only on the device, also in check mode.
  - >-
    With O(backup_file), writes the normalised configuration there (mode 0600). An existing file
    with the same content is left as it is; a different one is refused unless O(overwrite), so a
    rerun after a partial push never replaces the configuration taken before the change.
options:
  command:
    description: The command that shows the running configuration.
    type: str
    default: show running-config
  show:
    description: Show commands to send before O(command), in order.
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  backup_file:
    description: Controller path to save the normalised configuration to; its directory must exist.
    type: path
  overwrite:
    description: Replace a different earlier O(backup_file).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  connection:
    description: ansible.netcommon.network_cli only.
notes:
  - >-
    The file is written in check mode too: it changes nothing on the device, and a dry run's diff
    and a rollback need it.
"""

EXAMPLES = r"""
- name: Read the device's version and running configuration in one task
  overflyt.network.running_config:
    show:
      - show version
  register: read

- name: Read the running configuration and save it into the run record
  overflyt.network.running_config:
    backup_file: "{{ net_backup_dir }}/{{ inventory_hostname }}.cfg"
  register: shown
"""

RETURN = r"""
stdout:
  description: The running configuration as the device showed it.
  type: str
  returned: success
config:
  description: The same, normalised (the backup file's content).
  type: str
  returned: success
sha256:
  description: sha256 of RV(config).
  type: str
  returned: success
shown:
  description: What the device showed for each of O(show), in order.
  type: list
  elements: str
  returned: success
  version_added: 0.3.0
backup_file:
  description: Where the backup was saved (or already held the same configuration).
  type: str
  returned: when O(backup_file) is given
"""
