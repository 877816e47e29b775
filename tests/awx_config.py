"""awx/vars/main.yml as AWX would receive it: its own variables rendered (job slices, rrules, names), with
helpers that read what a playbook and its roles accept. Shared by tests/unit/test_awx_config.py and
tests/awx/launch.py, so that the launches use the data the unit tests checked."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[1]
AWX_VARS = ROOT / "awx" / "vars" / "main.yml"


def _render(value, context, env):
    if isinstance(value, str) and "{" in value:
        rendered = env.from_string(value).render(context)
        return int(rendered) if rendered.isdigit() and value.strip().startswith("{{") else rendered
    if isinstance(value, list):
        return [_render(v, context, env) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, context, env) for k, v in value.items()}
    return value


def load(overrides: dict | None = None) -> dict:
    """The configuration with its own variables (and overrides) rendered, as configure.yml templates it.
    Injector templates ({% raw %}) come out as the Jinja AWX renders with the credential's inputs."""
    raw = yaml.safe_load(AWX_VARS.read_text())
    raw.update(overrides or {})
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    scalars = {k: v for k, v in raw.items() if not isinstance(v, (list, dict))}
    context = _render(scalars, scalars, env)
    return {k: _render(v, context, env) for k, v in raw.items()}


def render_injectors(credential_type: dict, inputs: dict) -> dict:
    """The extra variables AWX injects for a credential of this type with these inputs."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    fields = {f["id"]: f.get("default", "") for f in credential_type["inputs"]["fields"]}
    fields.update(inputs)
    return {k: env.from_string(v).render(fields) for k, v in credential_type["injectors"].get("extra_vars", {}).items()}


def playbook_files(playbook: str) -> list[Path]:
    """The playbook and the playbooks it imports (transitively), in the order they run."""
    seen: list[Path] = []

    def visit(path: Path) -> None:
        if path in seen:
            return
        seen.append(path)
        for play in yaml.safe_load(path.read_text()) or []:
            target = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
            if target:
                visit((path.parent / target).resolve())

    visit((ROOT / playbook).resolve())
    return seen


def roles_of(playbook: str) -> set[str]:
    """The collection's roles a playbook (and what it imports) runs."""
    names = set()
    for path in playbook_files(playbook):
        names.update(re.findall(r"muejam\.dbops\.([a-z_]+)\b", path.read_text()))
    return {name for name in names if (ROOT / "roles" / name / "meta" / "argument_specs.yml").exists()}


def role_options(role: str) -> dict[str, dict]:
    """Every option of every entry point of a role's argument_specs."""
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict] = {}
    for entry in specs.values():
        options.update(entry.get("options") or {})
    return options


def playbook_text(playbook: str) -> str:
    return "\n".join(path.read_text() for path in playbook_files(playbook))
