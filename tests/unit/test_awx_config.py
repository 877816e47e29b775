"""The AWX configuration (awx/vars/main.yml, loaded by awx/configure.yml) against the collection itself, with no AWX
server: templates name playbooks that exist and cover the runbook, surveys ask for what the playbooks accept with
matching types, harmful answers have no default, slicing follows what each playbook says, injectors set variables
the roles read, rrules give the intended runs, the workflow filter builds awx.awx's nodes."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import awx_config  # noqa: E402  (tests/awx_config.py)
from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.muejam.dbops.plugins.filter.awx import awx_workflow_nodes  # noqa: E402

CONFIG = awx_config.load()
TEMPLATES = CONFIG["dbops_awx_job_templates"]
BY_NAME = {t["name"]: t for t in TEMPLATES}
# Every runbook procedure has a job template (the list; create and monitoring are set-up steps).
PROCEDURES = {
    "playbooks/add_replica.yml", "playbooks/failover.yml", "playbooks/rejoin.yml", "playbooks/backup.yml",
    "playbooks/restore.yml", "playbooks/scale_redis_cluster.yml", "playbooks/redis_cache_flush.yml",
    "playbooks/cache_warm.yml", "playbooks/morning_health_check.yml", "playbooks/weekly_maintenance.yml",
    "playbooks/incident_high_latency.yml", "playbooks/incident_connection_exhaustion.yml",
    "playbooks/incident_replication_lag.yml", "playbooks/incident_cache_failure.yml",
    "playbooks/schema_migration.yml",
}
# Playbooks with no template, and why.
NOT_TEMPLATES = {
    "playbooks/fence_on_sight.yml": "imported first by every playbook that reaches PostgreSQL",
    "playbooks/weekly_maintenance_timer.yml": "a systemd timer for sites without AWX (AWX has the schedule)",
}
# Variables whose answer can destroy data or availability: never a default, always asked.
DANGEROUS = {"replica", "rejoin", "restore_host", "source_prefix", "incident_cache_flush_confirm",
             "failover_accept_data_loss", "accept_unreachable_primary", "remove_masters", "schema_migration_version"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# argument_specs type -> survey types whose answer the role's validation accepts as that type.
SPEC_TYPES = {"str": {"text", "textarea", "password", "multiplechoice"}, "path": {"text", "multiplechoice"},
              "raw": SURVEY_TYPES, "int": {"integer"}, "float": {"float", "integer"}, "list": {"multiselect"},
              "bool": {"multiplechoice"}}
BOOL_CHOICES = {"true", "false"}


def questions():
    return [(t, q) for t in TEMPLATES for q in t["survey"]]


def test_every_template_names_an_existing_playbook_and_every_procedure_has_one():
    playbooks = {t["playbook"] for t in TEMPLATES}
    assert not [p for p in playbooks if not (awx_config.ROOT / p).is_file()]
    assert playbooks >= PROCEDURES
    every = {str(p.relative_to(awx_config.ROOT)) for p in (awx_config.ROOT / "playbooks").glob("*.yml")}
    assert every - playbooks == set(NOT_TEMPLATES)
    assert len(BY_NAME) == len(TEMPLATES)


@pytest.mark.parametrize("template,question", questions(), ids=lambda v: v.get("variable", v.get("name")))
def test_each_survey_variable_is_accepted_by_the_playbook_or_its_roles_with_a_matching_type(template, question):
    variable, kind = question["variable"], question["type"]
    assert kind in SURVEY_TYPES and set(question) >= {"question_name", "variable", "type", "required"}
    options = {}
    for role in awx_config.roles_of(template["playbook"]):
        options.update(awx_config.role_options(role))
    text = awx_config.playbook_text(template["playbook"])
    if variable in options:
        spec = options[variable]
        assert kind in SPEC_TYPES[spec.get("type", "str")], (variable, spec.get("type"), kind)
        if spec.get("choices"):
            assert kind == "multiplechoice" and set(question["choices"]) <= {str(c) for c in spec["choices"]}
    else:
        # A playbook variable: it must be read there, and a `| bool` or `| int` there fixes the survey's type.
        assert re.search(r"\b%s\b" % re.escape(variable), text), "%s: not read by %s" % (variable, template["playbook"])
        if re.search(r"\b%s\b[^}\n]*\|\s*bool" % re.escape(variable), text):
            kind = "bool"
            assert set(question["choices"]) == BOOL_CHOICES
        if re.search(r"\b%s\b[^}\n]*\|\s*int" % re.escape(variable), text):
            assert question["type"] == "integer"
    if question["type"] == "multiplechoice" and set(question["choices"]) & BOOL_CHOICES:
        assert set(question["choices"]) == BOOL_CHOICES, "a yes/no question offers exactly true and false"
    if "default" in question:
        if question["type"] == "multiplechoice":
            assert question["default"] in question["choices"]
        if question["type"] == "integer":
            default = question["default"]
            assert question.get("min", default) <= default <= question.get("max", default)
    assert "choices" not in question or question["type"] in ("multiplechoice", "multiselect")
    assert "password" not in variable or question["type"] == "password"


def test_answers_that_could_do_harm_are_required_and_have_no_default():
    for template, question in questions():
        harmful = set(template.get("harmful", []))
        assert harmful <= {q["variable"] for q in template["survey"]}, template["name"]
        if question["variable"] in DANGEROUS:
            assert "default" not in question, (template["name"], question["variable"])
        if question["variable"] in harmful:
            assert question["required"] and "default" not in question, (template["name"], question["variable"])
    assert BY_NAME["Emergency cache flush"]["survey"][0]["variable"] == "incident_cache_flush_confirm"
    assert BY_NAME["Emergency cache flush"]["survey"][0]["type"] == "text"


def test_the_flush_confirmation_the_survey_asks_for_is_the_one_the_role_checks():
    role_vars = (awx_config.ROOT / "roles" / "incident" / "tasks" / "cache_flush.yml").read_text()
    question = BY_NAME["Emergency cache flush"]["survey"][0]
    assert "flush-the-cache" in question["question_name"] and "flush-the-cache" in role_vars


def test_slicing_follows_what_each_playbook_says():
    for template in TEMPLATES:
        slices = int(template["job_slice_count"])
        head = "\n".join(line for line in (awx_config.ROOT / template["playbook"]).read_text().splitlines()
                         if line.startswith("#"))
        assert template["slicing"], template["name"]
        forbids = re.search(r"do not slice|no slicing|slice count 1|job slicing 1", head, re.I)
        allows = re.search(r"safe to slice|AWX job slicing|play slices", head, re.I)
        if forbids:
            assert slices == 1, template["name"]
        if slices > 1:
            assert allows and not forbids, template["name"]
    assert int(BY_NAME["Emergency failover"]["job_slice_count"]) == 1
    assert int(BY_NAME["Weekly maintenance"]["job_slice_count"]) == CONFIG["dbops_awx_job_slices"] > 1
    assert int(BY_NAME["Morning health check"]["job_slice_count"]) == 1


def test_credential_injectors_set_variables_the_roles_read_from_inputs_the_type_defines():
    every_option = {}
    for spec in (awx_config.ROOT / "roles").glob("*/meta/argument_specs.yml"):
        every_option.update(awx_config.role_options(spec.parts[-3]))
    shared = {"dbops_s3_bucket", "dbops_s3_endpoint_url"}  # read by the roles' defaults
    for ctype in CONFIG["dbops_awx_credential_types"]:
        ids = {f["id"] for f in ctype["inputs"]["fields"]}
        assert set(ctype["inputs"]["required"]) <= ids
        for field in ctype["inputs"]["fields"]:
            assert field.get("secret", False) == bool(re.search("password|secret", field["id"])), field["id"]
        for var, template in ctype["injectors"]["extra_vars"].items():
            assert var in every_option or var in shared, var
            assert set(re.findall(r"{{\s*(\w+)", template)) <= ids, (var, template)
        inputs = {f: "v-%s" % f for f in ids}
        injected = awx_config.render_injectors(ctype, inputs)
        assert all(value.startswith("v-") for value in injected.values()), injected
    keys = {c["key"] for c in CONFIG["dbops_awx_credentials"]}
    assert {k for t in TEMPLATES for k in t.get("credentials", [])} <= keys


def next_runs(rule: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    # AWX keeps DTSTART and RRULE on one line; dateutil reads them as two.
    parsed = rrule.rrulestr(rule.replace(" RRULE:", "\nRRULE:"))
    runs = [parsed.after(after)]
    while len(runs) < count:
        runs.append(parsed.after(runs[-1]))
    return runs


def test_every_schedule_parses_and_runs_at_the_intended_local_times_across_daylight_saving():
    zone = ZoneInfo(CONFIG["dbops_awx_timezone"])
    schedules = {s["template"]: s for s in CONFIG["dbops_awx_schedules"]}
    assert set(schedules) == {"Morning health check", "Daily backup", "Weekly maintenance"}
    assert set(schedules) <= set(BY_NAME)
    for schedule in schedules.values():
        assert "TZID=%s:" % CONFIG["dbops_awx_timezone"] in schedule["rrule"]
    # The last Sunday of March 2027 (28th): the clocks go forward in Europe/London.
    after = dt.datetime(2027, 3, 25, 12, 0, tzinfo=zone)
    morning = next_runs(schedules["Morning health check"]["rrule"], after, 5)
    assert [(r.day, r.hour, r.minute) for r in morning] == [(26, 9, 0), (27, 9, 0), (28, 9, 0), (29, 9, 0), (30, 9, 0)]
    assert {r.utcoffset() for r in morning[:2]} != {r.utcoffset() for r in morning[3:]}
    backup = next_runs(schedules["Daily backup"]["rrule"], after, 3)
    # London's clocks go from 01:00 to 02:00: 02:00 local still happens, an hour earlier in UTC.
    assert [(r.day, r.hour) for r in backup] == [(26, 2), (27, 2), (28, 2)]
    assert [r.astimezone(dt.timezone.utc).hour for r in backup] == [2, 2, 1]
    weekly = next_runs(schedules["Weekly maintenance"]["rrule"], after, 3)
    assert [r.weekday() for r in weekly] == [6, 6, 6] and [r.day for r in weekly] == [28, 4, 11]
    assert [r.hour for r in weekly[1:]] == [2, 2]
    # Nothing runs before the schedules' start.
    first = next_runs(schedules["Morning health check"]["rrule"], dt.datetime(2026, 6, 1, tzinfo=zone), 1)[0]
    assert first.date() == dt.date(2027, 1, 1)


def test_workflow_nodes_point_at_templates_and_the_filter_builds_awx_nodes():
    (workflow,) = CONFIG["dbops_awx_workflows"]
    nodes = awx_workflow_nodes(workflow, CONFIG["dbops_awx_prefix"], "muejam")
    assert [n["identifier"] for n in nodes] == ["failover", "health"]
    assert nodes[0]["related"] == {"success_nodes": [{"identifier": "health"}]}
    assert nodes[0]["unified_job_template"] == {"name": "muejam.dbops / Emergency failover", "type": "job_template",
                                                "organization": {"name": "muejam"}}
    assert nodes[1]["extra_data"] == {"health_check_fail_on_critical": "false"}
    assert all(n["template"] in BY_NAME for n in workflow["nodes"])
    broken = {"name": "w", "nodes": [{"identifier": "a", "template": "x", "failure": ["b"]}]}
    with pytest.raises(AnsibleFilterError, match="followed by b"):
        awx_workflow_nodes(broken, "p", "o")


def test_launch_answers_are_survey_answers_and_every_required_question_is_answered():
    workflows = {w["name"]: w for w in CONFIG["dbops_awx_workflows"]}
    orders = [t["launch"]["order"] for t in TEMPLATES if "order" in t["launch"]]
    orders += [w["launch"]["order"] for w in workflows.values()]
    assert len(orders) == len(set(orders))
    for template in TEMPLATES:
        # launched on its own, or as a node of a workflow that is launched
        assert ("order" in template["launch"]) != ("workflow" in template["launch"]), template["name"]
        if "workflow" in template["launch"]:
            nodes = workflows[template["launch"]["workflow"]]["nodes"]
            assert template["name"] in [n["template"] for n in nodes]
    for template in TEMPLATES:
        answers = template["launch"]["answers"]
        survey = {q["variable"]: q for q in template["survey"]}
        assert set(answers) <= set(survey), template["name"]
        for variable, question in survey.items():
            if question["required"] and "default" not in question:
                assert variable in answers, (template["name"], variable)
            if variable in answers and question["type"] == "multiplechoice":
                assert answers[variable] in question["choices"]
        assert template["launch"]["expect"] in ("changed", "unchanged", "any")
