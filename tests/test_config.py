from dataclasses import fields
from pathlib import Path

import pytest

from refmatch.config import REGISTRY, Settings, docs_table, load_settings
from refmatch.domain.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_has_a_default_field_and_help():
    names = {f.name for f in fields(Settings)} - {"extra"}
    assert names == {s.name for s in REGISTRY}
    for s in REGISTRY:
        assert s.help.endswith("."), s.name
        assert getattr(Settings(), s.name) == s.default, s.name


def test_environment_then_overrides():
    s = load_settings({"k": 7}, env={"REFMATCH_K": "3", "REFMATCH_DB": "x.db", "REFMATCH_STAGES": "a, b ,c"})
    assert (s.k, s.db, s.stages) == (7, "x.db", ("a", "b", "c"))


def test_bad_values_name_the_variable():
    with pytest.raises(ConfigError, match="^REFMATCH_K: must be a whole number, got 'many'$"):
        load_settings(env={"REFMATCH_K": "many"})
    with pytest.raises(ConfigError, match="^REFMATCH_W_NEED: must be a number, got '1,2'$"):
        load_settings(env={"REFMATCH_W_NEED": "1,2"})  # a decimal comma
    for raw in ("nan", "inf", "-Infinity"):
        with pytest.raises(ConfigError, match=f"^REFMATCH_DIVERSITY: must be a finite number, got '{raw}'$"):
            load_settings(env={"REFMATCH_DIVERSITY": raw})
    with pytest.raises(ConfigError, match="^REFMATCH_SECURE_COOKIES: not a boolean: 'maybe'$"):
        load_settings(env={"REFMATCH_SECURE_COOKIES": "maybe"})
    with pytest.raises(ConfigError, match="unknown setting: colour"):
        load_settings({"colour": "red"}, env={})


def test_readme_documents_every_setting():
    assert docs_table() in README.read_text(), "README's configuration table is out of date: paste docs_table()"
