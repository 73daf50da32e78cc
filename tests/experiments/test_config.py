"""The harness's one config loader: types from the dataclass fields, errors naming the file and the key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from negrl.experiments.config import ConfigError, load_config, write_resolved_config


@dataclass
class Inner:
    k: int = 4
    rule: str = "and"


@dataclass
class Outer:
    n_train: int = 8
    lr: float = 1e-3
    name: str = "x"
    flag: bool = False
    limit: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    mc: dict[str, Any] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    inners: list[Inner] = field(default_factory=list)


def _yaml(tmp_path, text: str):
    p = tmp_path / "run.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_nested_dataclasses_are_built_from_their_field_types(tmp_path):
    p = _yaml(tmp_path, "n_train: 12\nlr: 1e-4\ninner: {k: 2}\ninners: [{rule: or}]\nmc: {k: 5}\nlimit: null\n")
    cfg = load_config(Outer, p)
    assert cfg.n_train == 12 and cfg.lr == pytest.approx(1e-4)  # YAML 1.1 reads 1e-4 as a string
    assert cfg.inner == Inner(k=2) and cfg.inners == [Inner(rule="or")] and cfg.mc == {"k": 5}


@pytest.mark.parametrize("text, key, expected", [
    ("n_train: 12.5\n", "n_train", "int"),              # would silently become 13 problems
    ("flag: 'yes please'\n", "flag", "bool"),
    ("seeds: [0, 1.5]\n", "seeds[1]", "int"),
    ("inner: {k: two}\n", "inner.k", "int"),
    ("name: 3\n", "name", "str"),
    ("mc: 5\n", "mc", "dict"),
])
def test_a_mistyped_key_is_named_with_its_file_and_type(tmp_path, text, key, expected):
    p = _yaml(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(Outer, p)
    assert str(p) in str(e.value) and repr(key) in str(e.value) and expected in str(e.value)


def test_unknown_keys_are_refused_at_any_depth(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.yaml: unknown key\(s\) 'n_trian'"):
        load_config(Outer, _yaml(tmp_path, "n_trian: 3\n"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) 'inner.kk'"):
        load_config(Outer, _yaml(tmp_path, "inner: {kk: 3}\n"))


def test_a_yaml_syntax_error_names_the_file(tmp_path):
    p = _yaml(tmp_path, "n_train: [1, 2\nlr: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(Outer, p)
    assert str(p) in str(e.value) and "<unicode string>" not in str(e.value) and "line" in str(e.value)


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(Outer, _yaml(tmp_path, "- 1\n- 2\n"))


def test_set_overrides_are_parsed_by_the_field_type(tmp_path):
    p = _yaml(tmp_path, "n_train: 12\nmc: {k: 5}\n")
    cfg = load_config(Outer, p, ["name=007", "n_train=20", "mc.early_stop=true", "inner.k=3", "lr=2e-5",
                                 "seeds=[1, 2]", "limit=null"])
    assert cfg.name == "007"  # a str field keeps the text (YAML would read 7)
    assert cfg.n_train == 20 and cfg.mc == {"k": 5, "early_stop": True} and cfg.inner.k == 3
    assert cfg.lr == pytest.approx(2e-5) and cfg.seeds == [1, 2] and cfg.limit is None


def test_set_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"--set 'n_trains=3': unknown key"):
        load_config(Outer, None, ["n_trains=3"])
    with pytest.raises(ConfigError, match=r"--set: key 'n_train' expects int, got 2\.5"):
        load_config(Outer, None, ["n_train=2.5"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(Outer, None, ["n_train"])


def test_resolved_config_round_trips_as_yaml_and_json(tmp_path):
    cfg = Outer(inner=Inner(k=1))
    y = write_resolved_config(tmp_path / "config.yaml", cfg)
    assert load_config(Outer, y) == cfg
    j = write_resolved_config(tmp_path / "config.json", {"experiment": cfg})
    assert json.loads(j.read_text())["experiment"]["inner"] == {"k": 1, "rule": "and"}
    assert yaml.safe_load(y.read_text())["inner"] == {"k": 1, "rule": "and"}
