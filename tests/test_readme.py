"""The README's examples run as written, so the docs cannot drift from the code."""

from __future__ import annotations

import re

import dcsim
from tests.helpers import ROOT, SCENARIOS

README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_plugin_example_registers_and_runs() -> None:
    plugin = next(block for block in python_blocks() if "@register" in block)
    exec(compile(plugin, "README.md", "exec"), {})
    result = dcsim.run(SCENARIOS / "quickstart.yaml", overrides=[
        "policies.scheduler.name=largest_first", "policies.scheduler.params={min_width: 1}",
        "workload.training.jobs=50"])
    assert result.summary["training"]["jobs_completed"] == 50
    assert result.scenario["policies"]["scheduler"] == {"name": "largest_first", "params": {"min_width": 1}}


def test_two_commands_come_first() -> None:
    commands = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)[:2]
    assert commands[0].endswith("dcsim run scenarios/quickstart.yaml")
    assert commands[1].endswith("-m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci, ".ci/run must run the README's test command verbatim"
