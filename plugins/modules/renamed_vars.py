#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: renamed_vars
short_description: Warn when a renamed variable is still given under its old name
version_added: 0.4.0
description:
  - The collection gives one name to one concept (C(pg_version), C(cluster_name), C(data_directory)) and names
    playbook extra-vars after what they are for (C(failover_candidate), not C(candidate)). The old names stay
    accepted for one release; this prints Ansible's deprecation warning for each one given.
  - Runs in the controller's process (an action plugin of the same name); contacts no host.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  renamed:
    description: The renamed variables.
    type: list
    elements: dict
    required: true
    suboptions:
      old:
        description: The old name.
        type: str
        required: true
      new:
        description: The name to use.
        type: str
        required: true
      given:
        description: Whether the old name was set (for example C("{{ candidate is defined }}")).
        type: bool
        required: true
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Warn about old variable names
  muejam.dbops.renamed_vars:
    renamed:
      - {old: candidate, new: failover_candidate, given: "{{ candidate is defined }}"}
  run_once: true
"""

RETURN = r"""
deprecated:
  description: The old names that were given.
  returned: always
  type: list
  elements: str
  sample: [candidate]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.renamed import ARGUMENT_SPEC, deprecations


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    for item in deprecations(module.params["renamed"]):
        module.deprecate(item["msg"], version=item["version"], collection_name=item["collection_name"])
    module.exit_json(changed=False, deprecated=[item["old"] for item in module.params["renamed"] if item["given"]])


if __name__ == "__main__":
    main()
