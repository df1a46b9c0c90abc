"""README's library example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0].replace("max_epochs=200", "max_epochs=20")
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    selected = namespace["result"].selected["accuracy"]
    assert 1 <= selected["epoch"] <= 20 and 0.0 <= selected["test"] <= 1.0
    assert "'epoch'" in capsys.readouterr().out


def test_both_setup_commands_are_on_the_first_screen():
    head = "\n".join(README.read_text().splitlines()[:20])
    assert "make bench" in head and "make test" in head
