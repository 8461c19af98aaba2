"""The README's worked domain example loads, and says what `domain show` finds."""

import re
from pathlib import Path

from textdqn.envs.dialogue.acts import system_acts
from textdqn.envs.dialogue.domain import load_domain, make_goals, make_kb

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_taxi_domain_is_valid_and_has_the_acts_it_says(tmp_path):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Write your own domain") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "taxis.yaml").write_text(block)
    domain = load_domain(str(tmp_path / "taxis.yaml"))
    assert domain.name == "taxis" and len(system_acts(domain)) == 19
    kb = make_kb(domain)
    colors = {"bluecab": "white", "citycar": "black", "metro": "yellow"}
    assert all(kb.entry(i)["color"] == colors[kb.entry(i)["company"]] for i in range(len(kb)))
    train, test = make_goals(domain, kb)
    assert len(train) == 450 and len(test) == 150
