# Copyright: muejam.dbops developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for awx/configure.yml: the collection's compact workflow description in awx.awx's node format."""

from __future__ import annotations

DOCUMENTATION = r"""
name: awx_workflow_nodes
short_description: A workflow of awx/vars/main.yml as awx.awx.workflow_job_template nodes
version_added: 0.7.0
author: muejam.dbops developers
description:
  - Turns a workflow of C(dbops_awx_workflows) (nodes with an identifier, a job template's short name, the
    identifiers that follow on success, failure or always, and extra data) into the O(workflow_nodes) list of
    M(awx.awx.workflow_job_template).
  - A node that follows an identifier the workflow does not define is an error, raised before anything is sent.
options:
  _input:
    description: The workflow (C(name), C(nodes)).
    type: dict
    required: true
  prefix:
    description: The prefix of the job templates' names.
    type: str
    required: true
  organization:
    description: The organization of the job templates.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Workflows
  awx.awx.workflow_job_template:
    name: "{{ item.name }}"
    workflow_nodes: "{{ item | muejam.dbops.awx_workflow_nodes('muejam.dbops', 'muejam') }}"
  loop: "{{ dbops_awx_workflows }}"
"""

RETURN = r"""
_value:
  description: The nodes, each with its identifier, its job template and the related nodes.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError  # noqa: E402  (after the documentation, as in modules)

RELATIONS = (("success", "success_nodes"), ("failure", "failure_nodes"), ("always", "always_nodes"))


def awx_workflow_nodes(workflow, prefix, organization):
    nodes = workflow.get("nodes") or []
    known = {node["identifier"] for node in nodes}
    result = []
    for node in nodes:
        related = {}
        for short, key in RELATIONS:
            following = node.get(short) or []
            unknown = sorted(set(following) - known)
            if unknown:
                raise AnsibleFilterError("workflow %r: node %r is followed by %s, which the workflow does not define"
                                         % (workflow.get("name"), node["identifier"], ", ".join(unknown)))
            if following:
                related[key] = [{"identifier": identifier} for identifier in following]
        entry = {
            "identifier": node["identifier"],
            "unified_job_template": {
                "name": "%s / %s" % (prefix, node["template"]),
                "type": "job_template",
                "organization": {"name": organization},
            },
            "related": related,
        }
        if node.get("extra_data"):
            entry["extra_data"] = dict(node["extra_data"])
        result.append(entry)
    return result


class FilterModule:
    def filters(self):
        return {"awx_workflow_nodes": awx_workflow_nodes}
