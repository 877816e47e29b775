#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_report
short_description: Write a report of checks as Markdown, JSON and one self-contained HTML page
version_added: "0.4.0"
description:
  - The collection's one report machinery (the morning health check, and later maintenance and incident
    playbooks). A report is a list of checks, each with status C(ok), C(warn) or C(fail), value, threshold,
    reason, and for one that is not ok the runbook section and the playbook to run.
  - Writes C(<basename>-<time>.<format>) and C(<basename>-latest.<format>) in O(dest), and compares the numbers of
    the checks named in O(compared) with the newest earlier JSON report there (the change since it).
  - Runs on the controller (an action plugin), as the files are for the person who ran the playbook. Under AWX the
    controller is the execution environment, whose files go with it. Give O(dest) a persistent volume there, or
    read the report from the job's output, which holds the same table.
  - It never fails because a check failed. Deciding that is the caller's (role muejam.dbops.health_check
    fails the run at its end when a critical check failed).
author:
  - muejam.dbops developers (@muejam)
extends_documentation_fragment:
  - muejam.dbops.attributes
attributes:
  check_mode:
    support: full
    details: The report is written in check mode too; it changes nothing on a managed host.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Each run writes a new report.
options:
  title:
    description: Title of the report.
    type: str
    required: true
  checks:
    description:
      - The checks, each a dict with C(check), C(target), C(status) (C(ok), C(warn), C(fail)), C(value), C(unit),
        C(threshold), C(reason), C(critical), C(runbook) and C(playbook) (as the collection's check modules return).
    type: list
    elements: dict
    required: true
  dest:
    description: Directory for the report files (created when missing).
    type: path
    required: true
  basename:
    description: File name prefix.
    type: str
    default: report
  formats:
    description: Formats to write.
    type: list
    elements: str
    choices: [md, json, html]
    default: [md, json, html]
  compared:
    description: Names of the checks (their C(check)) whose numbers are compared with the previous report.
    type: list
    elements: str
    default: []
  notes:
    description: Lines added at the end of the report.
    type: list
    elements: str
    default: []
  unreachable:
    description: Hosts that gave no result (each becomes a failed critical check).
    type: list
    elements: str
    default: []
  keep:
    description: Reports of each format kept in O(dest), the newest; older ones are removed.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Write the morning report
  muejam.dbops.health_report:
    title: Morning health check
    checks: "{{ checks }}"
    dest: "{{ playbook_dir }}/reports"
    basename: morning-health
    compared: [database size, replication lag, cache hit rate]
  register: report
"""

RETURN = r"""
report:
  description: The report (title, generated_at, status, counts, failed_critical, checks, changes, notes).
  returned: success
  type: dict
files:
  description: Path of the file written for each format, by format.
  returned: success
  type: dict
  sample: {html: /srv/reports/morning-health-20261203T070000Z.html}
latest:
  description: Path of the C(-latest) copy for each format, by format.
  returned: success
  type: dict
lines:
  description: The console table, a line each.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.report import REPORT_ARGUMENT_SPEC, write_report_now


def main():
    module = AnsibleModule(argument_spec=REPORT_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        written = write_report_now(module.params)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="The report could not be written to %s: %s" % (module.params["dest"], exc))
    module.exit_json(changed=False, report=written["report"], files=written["files"], latest=written["latest"],
                     lines=written["text"].split("\n"))


if __name__ == "__main__":
    main()
