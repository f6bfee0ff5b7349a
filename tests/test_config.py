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
    with pytest.raises(ConfigError, match="REFMATCH_K"):
        load_settings(env={"REFMATCH_K": "many"})
    with pytest.raises(ConfigError, match="unknown setting: colour"):
        load_settings({"colour": "red"}, env={})


def test_readme_documents_every_setting():
    assert docs_table() in README.read_text(), "README's configuration table is out of date: paste docs_table()"
