"""Config model, loading and validation (deploy_plugin.config)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from deploy_plugin.config import (
    FILE_PLACEHOLDERS,
    PLACEHOLDERS,
    ConfigError,
    DeployConfig,
    Group,
    PlaceholderError,
    is_config_file,
    load_config,
    placeholders,
    render_command,
    schema,
)
from tests.projects import write_project

DATA = Path(__file__).parent / "data" / "configs"
GROUP_MINIMAL = "groups:\n  - name: a\n    order: 1\n"
EMAIL = (
    GROUP_MINIMAL + "notify:\n  - email:\n      url: {url}\n      from: deploy@example.com\n"
    "      to: [ops@example.com]\n"
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_text(tmp_path: Path, content: str, name: str = "x.deploy.yaml") -> DeployConfig:
    return load_config(write(tmp_path, name, content))


def assert_one_paragraph(err: ConfigError) -> None:
    text = str(err)
    assert "\n" not in text and "\r" not in text
    assert "Traceback" not in text
    assert text == text.strip()


# --------------------------------------------------------------------------- the seed's configs


def test_woofs_seed_loads_as_written(tmp_path):
    source = DATA / "woofs.json"
    config = load_config(source)

    assert config.path == source.absolute() and config.path.is_absolute()
    assert config.root == DATA.resolve()
    assert config.project == "configs"  # no `project` key: the root folder's name
    assert config.source_text == source.read_text(encoding="utf-8")
    assert config.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert config.data == json.loads(source.read_text(encoding="utf-8"))
    assert [g.name for g in config.groups] == [
        "database_migrations",
        "typescript_build",
        "edge_functions",
        "background_services",
    ]
    migrations, build, edge, services = config.groups
    assert migrations == Group(
        name="database_migrations",
        order=1,
        index=0,
        file_patterns=("migrations/*.sql", "woofsDB/migrations/*.sql"),
        pre_deploy=("psql $DATABASE_URL -c 'SELECT version();'",),
        build_command=None,
        test_command=None,
        deploy_command="psql $DATABASE_URL -f {file}",
        post_deploy=("psql $DATABASE_URL -c 'SELECT COUNT(*) FROM woofs.sync_state;'",),
        required_env_vars=("DATABASE_URL",),
        track_migrations=True,  # every pattern ends in .sql
        line=3,
    )
    assert migrations.deploy_per_file
    assert (build.build_command, build.test_command, build.deploy_command) == (
        "npm run build",
        "npm test",
        None,
    )
    assert not build.track_migrations and not build.deploy_per_file
    assert build.required_env_vars == () and build.pre_deploy == () and build.post_deploy == ()
    assert edge.deploy_per_file and not edge.track_migrations
    assert edge.required_env_vars == ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY")
    assert services.deploy_command == "sudo systemctl restart {service_name}"
    assert services.deploy_per_file
    for group in config.groups:
        assert group.database_url_env == "DATABASE_URL" and group.max_parallel == 1
        assert group.timeout_seconds is None and group.targets is None
        assert group.applies_to("production") and group.applies_to("anything")
    assert config.health_check is not None
    assert config.health_check.url == "https://api.woofs.com/health"
    assert config.health_check.expected_status == 200
    assert config.health_check.timeout_seconds == 30.0
    assert config.notify == () and config.targets == {}
    assert config.line_of("groups[2].deploy_command") == 30
    assert config.line_of("groups[0].file_patterns[1]") == 8
    assert config.line_of("health_check.url") == 47
    assert config.line_of("groups[9]") is None

    # Under its real name it is a config, and it loads the same.
    copy = tmp_path / "woofs.deploy.json"
    shutil.copyfile(source, copy)
    assert is_config_file(copy)
    assert load_config(copy).groups == config.groups


def test_phase2_seed_loads_as_written():
    config = load_config(DATA / "phase2-example.json")
    assert [(g.name, g.order, g.track_migrations, g.deploy_per_file) for g in config.groups] == [
        ("migrations", 1, True, True),
        ("typescript_build", 2, False, False),
        ("edge_functions", 3, False, True),
    ]
    first = config.groups[0]
    assert first.pre_deploy == ("psql --version",)
    assert first.post_deploy == ("echo 'Migrations applied'",)
    assert config.groups[1].required_env_vars == ("NODE_ENV",)
    assert config.groups[2].deploy_command == "supabase functions deploy {function_name}"
    assert config.health_check.expected_status == 200


def test_yaml_equivalent_gives_the_same_model():
    from_json = load_config(DATA / "woofs.json")
    from_yaml = load_config(DATA / "woofs.yaml")
    assert from_yaml.data == from_json.data
    without_lines = [dataclasses.replace(g, line=None) for g in from_yaml.groups]
    assert without_lines == [dataclasses.replace(g, line=None) for g in from_json.groups]
    assert from_yaml.health_check == from_json.health_check
    assert from_yaml.groups[0].line == 3
    assert from_yaml.line_of("groups[2].deploy_command") == 24
    assert from_yaml.line_of("groups[0].post_deploy[0]") == 12


# --------------------------------------------------------------------------- YAML and JSON details


def test_yaml_reads_only_true_and_false_as_booleans(tmp_path):
    config = load_text(
        tmp_path,
        "project: yes\n"
        "groups:\n"
        "  - name: no\n"
        "    order: 010\n"
        "    track_migrations: FALSE\n"
        "  - name: off\n"
        "    order: 2\n"
        "    track_migrations: True\n"
        "    file_patterns: [m/*.sql]\n"
        "  - name: 2024-01-01\n"
        "    order: 3\n"
        "notify:\n"
        "  - webhook: http://127.0.0.1:9/hook\n"
        "    on: [failure]\n"
        "  - webhook: http://127.0.0.1:9/other\n"
        "targets:\n"
        "  on:\n"
        "    protected: true\n"
        "  y:\n"
        "    protected: false\n",
    )
    assert config.project == "yes"
    assert [g.name for g in config.groups] == ["off", "2024-01-01", "no"]
    no = config.group("no")
    assert no.order == 10  # YAML 1.2: 010 is ten, not octal
    assert no.track_migrations is False
    assert config.group("off").track_migrations is True
    assert config.notify[0].on == ("failure",)
    assert config.notify[1].on == ("success", "failure")
    assert config.data["notify"][0]["on"] == ["failure"]
    assert config.targets["on"].protected is True and config.targets["y"].protected is False


def test_json_with_tabs_loads_with_lines(tmp_path):
    text = (
        '{\n\t"project":\t"tabbed",\n\t"groups"\t:\t[\n'
        '\t\t{\t"name":\t"a",\t"order":\t1 ,\t"file_patterns":\t["*.x"],\n'
        '\t\t\t"deploy_command":\t"echo\\t{file}"\t}\n'
        "\t]\n}\n"
    )
    config = load_text(tmp_path, text, "tabs.deploy.json")
    assert config.project == "tabbed"
    assert config.groups[0].deploy_command == "echo\t{file}"
    assert config.line_of("groups[0]") == 4
    assert config.line_of("groups[0].deploy_command") == 5

    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text.replace("1 ,", '"1",'), "tabs.deploy.json")
    assert (info.value.line, info.value.field) == (4, "groups[0].order")


def test_json_accepts_whatever_python_json_accepts(tmp_path):
    # A BOM, escaped keys, exotic whitespace and a UTF-16 file: json.loads takes them all.
    text = '\ufeff{"gro\\u0075ps": [{"name": "a", "order": 1, "timeout_seconds": 1e1}]}\r\n'
    assert load_text(tmp_path, text, "a.deploy.json").groups[0].timeout_seconds == 10.0
    path = write(
        tmp_path, "b.deploy.json", '{"groups": [{"name": "b", "order": 2}]}'.encode("utf-16")
    )
    assert load_config(path).groups[0].name == "b"


def test_yaml_merge_keys(tmp_path):
    config = load_text(
        tmp_path,
        "groups:\n"
        "  - &base\n    name: a\n    order: 5\n    timeout_seconds: 9\n"
        "  - <<: *base\n    name: b\n    order: 6\n",
    )
    a, b = config.groups
    assert (a.name, a.order, a.timeout_seconds) == ("a", 5, 9.0)
    assert (b.name, b.order, b.timeout_seconds) == ("b", 6, 9.0)
    assert config.line_of("groups[1].name") == 7


def test_model_defaults_order_and_targets(tmp_path):
    (tmp_path / "app").mkdir()
    config = load_text(
        tmp_path,
        "root: app\n"
        "project: shop\n"
        "groups:\n"
        "  - name: late\n    order: 2\n"
        "  - name: early\n    order: 1\n    targets: [staging]\n"
        "  - name: tie\n    order: 2\n    timeout_seconds: 1.5\n"
        "    database_url_env: SHOP_DB\n    file_patterns: [db/*.sql]\n"
        "  - name: untracked\n    order: 3\n    file_patterns: [db/*.sql]\n"
        "    track_migrations: false\n    deploy_command: psql -f x.sql\n    max_parallel: 4\n"
        "health_check:\n  url: http://127.0.0.1:1/health\n"
        "notify:\n  - webhook: ${HOOK}\n    on: [success]\n    timeout_seconds: 3\n"
        "targets:\n"
        "  staging:\n    type: database\n    provider: local\n    host: db1\n    region: eu\n"
        "    protected: true\n    env: {MODE: demo}\n    health_check_url: http://127.0.0.1:2/\n"
        "  local:\n",
    )
    assert config.root == (tmp_path / "app").resolve() and config.project == "shop"
    assert [(g.name, g.index) for g in config.groups] == [
        ("early", 1),
        ("late", 0),
        ("tie", 2),
        ("untracked", 3),
    ]
    early, _, tie, untracked = config.groups
    assert early.applies_to("staging") and not early.applies_to("local")
    assert (tie.max_parallel, tie.timeout_seconds, tie.database_url_env) == (1, 1.5, "SHOP_DB")
    assert untracked.max_parallel == 4  # a tracked group may not run in parallel
    assert tie.track_migrations and not tie.deploy_per_file  # built-in SQL executor
    assert not untracked.track_migrations
    assert config.health_check.expected_status == 200
    assert config.health_check.timeout_seconds == 30.0
    assert config.notify[0].webhook == "${HOOK}" and config.notify[0].timeout_seconds == 3.0
    staging = config.targets["staging"]
    assert (staging.type, staging.provider, staging.host, staging.region) == (
        "database",
        "local",
        "db1",
        "eu",
    )
    assert staging.protected and staging.env == {"MODE": "demo"}
    assert staging.health_check_url == "http://127.0.0.1:2/"
    local = config.targets["local"]
    assert (local.type, local.protected, local.env, local.health_check_url) == (
        None,
        False,
        {},
        None,
    )


def test_group_targets_are_free_when_the_config_declares_none(tmp_path):
    # Targets may live only in the store, so unknown names are not an error here.
    config = load_text(tmp_path, GROUP_MINIMAL + "    targets: [somewhere-stored]\n")
    assert config.groups[0].targets == ("somewhere-stored",)


def test_error_lists_further_problems(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_text(
            tmp_path,
            "groups:\n  - name: a\n    order: x\n  - name: b\n    order: y\n  - order: 3\n",
        )
    err = info.value
    assert (err.line, err.field) == (3, "groups[0].order")
    assert [(o.line, o.field) for o in err.others] == [(5, "groups[1].order"), (6, "groups[2]")]
    assert "2 more problems" in str(err)
    assert_one_paragraph(err)


def test_errors_survive_pickling(tmp_path):
    # xdist workers ship exceptions between processes
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, "groups:\n  - name: a\n    order: x\n  - name: b\n")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (str(copy), copy.line, copy.field, len(copy.others)) == (
        str(info.value),
        3,
        "groups[0].order",
        1,
    )
    with pytest.raises(PlaceholderError) as bad:
        placeholders("echo '{file}'")
    again = pickle.loads(pickle.dumps(bad.value))
    assert (str(again), again.name, again.reason) == (str(bad.value), "file", "quoted")


def test_error_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "deployments" / "x").mkdir(parents=True)
    write(tmp_path / "deployments" / "x", "deploy.yaml", "groups:\n  - name: a\n    order: first\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "deployments" / "x" / "deploy.yaml")
    assert str(info.value) == (
        "deployments/x/deploy.yaml, line 3: groups[0].order: expected an integer, got 'first' "
        "(a string). Set `order` to a whole number; groups run by ascending order."
    )
    assert info.value.path == "deployments/x/deploy.yaml"


# --------------------------------------------------------------------------- malformed configs

DIR = object()  # create a folder instead of a file
NONE = object()  # create nothing

# (id, file name, content, line, field, words the message must contain)
# fmt: off
MALFORMED = [
    ("yaml-bad-indent", "x.deploy.yaml", "groups:\n  - name: a\n    order: 1\n   foo: bar\n",
     4, None, ["invalid YAML at column 4", "indentation does not fit"]),
    ("yaml-missing-colon", "x.deploy.yaml", "groups:\n  - name: a\n    order 1\n    x: 2\n",
     3, None, ["invalid YAML at column 5", "neither a `key: value`"]),
    ("yaml-colon-in-value", "x.deploy.yaml", "groups:\n  - name: a: b\n", 2, None,
     ["invalid YAML", "quote a value that contains ': '"]),
    ("yaml-tab-indent", "x.deploy.yaml", "groups:\n\t- name: a\n", 2, None,
     ["invalid YAML", "tabs"]),
    ("yaml-unclosed-quote", "x.deploy.yaml", 'groups:\n  - name: "a\n    order: 1\n', 4, None,
     ["invalid YAML", "quoted scalar started on line 2"]),
    ("yaml-two-documents", "x.deploy.yaml", GROUP_MINIMAL + "---\ngroups: []\n", 4, None,
     ["second YAML document", "one document"]),
    ("yaml-python-tag", "x.deploy.yaml", "groups: !!python/object:os.system\n  - a\n", 1, None,
     ["python/object", "Remove the tag"]),
    ("yaml-control-char", "x.deploy.yaml", "groups:\n  - name: a\x07\n", 2, None,
     ["U+0007", "control character"]),
    ("yaml-duplicate-key", "x.deploy.yaml", GROUP_MINIMAL + "    name: b\n", 4, "groups[0]",
     ["duplicate key 'name'", "line 2", "line 4"]),
    ("yaml-duplicate-top-key", "x.deploy.yaml", "project: a\ngroups: []\nproject: b\n", 3, None,
     ["duplicate key 'project'", "first on line 1"]),
    ("yaml-non-string-key", "x.deploy.yaml", GROUP_MINIMAL + "    1: x\n", 4, "groups[0]",
     ["key 1 is not a string", "quote"]),
    ("yaml-recursive-alias", "x.deploy.yaml", "groups: &g\n  - name: a\n    order: 1\n    t: *g\n",
     4, "groups[0].t", ["contains itself", "alias"]),
    ("json-trailing-comma", "x.deploy.json",
     '{\n  "groups": [\n    {"name": "a", "order": 1,}\n  ]\n}\n', 3, None,
     ["invalid JSON", "double quotes", "trailing comma"]),
    ("json-missing-comma", "x.deploy.json", '{\n  "project": "p"\n  "groups": []\n}\n', 3, None,
     ["invalid JSON", "Expecting ',' delimiter"]),
    ("json-duplicate-key", "x.deploy.json",
     '{"groups": [{"name": "a",\n "order": 1,\n "order": 2}]}', 3, "groups[0]",
     ["duplicate key 'order'", "first on line 2"]),
    ("json-nan-timeout", "x.deploy.json",
     '{"groups": [{"name": "a", "order": 1,\n"timeout_seconds": NaN}]}', 2,
     "groups[0].timeout_seconds", ["finite"]),
    ("top-level-list", "x.deploy.yaml", "- a\n- b\n", 1, None,
     ["expected a mapping, got a list", "`groups` list"]),
    ("top-level-string", "x.deploy.json", '\n"groups"\n', 2, None,
     ["expected a mapping, got 'groups' (a string)"]),
    ("empty-file", "x.deploy.yaml", "", None, None, ["empty"]),
    ("comments-only", "x.deploy.yaml", "# todo\n\n", None, None, ["empty", "`groups`"]),
    ("bad-encoding-yaml", "x.deploy.yaml", b"groups:\n  - name: caf\xe9\n", 2, None,
     ["not valid UTF-8", "0xe9", "Save the file as UTF-8"]),
    ("bad-encoding-json", "x.deploy.json", b'{"groups":\n\n [{"name": "\xff"}]}', 3, None,
     ["not valid UTF-8", "0xff"]),
    ("missing-file", "nowhere.deploy.yaml", NONE, None, None, ["does not exist"]),
    ("folder-not-file", "dir.deploy.yaml", DIR, None, None, ["folder, not a config file"]),
    ("missing-groups", "x.deploy.yaml", "project: p\n", 1, None,
     ["missing required key 'groups'"]),
    ("groups-empty", "x.deploy.yaml", "project: p\ngroups: []\n", 2, "groups",
     ["must not be an empty list", "at least a `name`"]),
    ("groups-a-mapping", "x.deploy.yaml", "groups:\n  name: a\n  order: 1\n", 1, "groups",
     ["expected a list, got a mapping"]),
    ("group-a-string", "x.deploy.yaml", "groups:\n  - migrations\n", 2, "groups[0]",
     ["expected a mapping, got 'migrations'", "`name` and an `order`"]),
    ("missing-name", "x.deploy.yaml", "groups:\n  - order: 1\n", 2, "groups[0]",
     ["missing required key 'name'", "node id"]),
    ("missing-order", "x.deploy.yaml", GROUP_MINIMAL + "  - name: b\n", 4, "groups[1]",
     ["missing required key 'order'", "ascending order"]),
    ("order-a-word", "x.deploy.yaml", GROUP_MINIMAL + "  - name: b\n    order: first\n", 5,
     "groups[1].order", ["expected an integer, got 'first' (a string)", "whole number"]),
    ("order-a-boolean", "x.deploy.json", '{"groups": [\n{"name": "a", "order": true}]}', 2,
     "groups[0].order", ["expected an integer, got true (a boolean)"]),
    ("order-a-fraction", "x.deploy.yaml", "groups:\n  - name: a\n    order: 1.5\n", 3,
     "groups[0].order", ["expected an integer, got 1.5 (a number)"]),
    ("name-with-space", "x.deploy.yaml", "groups:\n  - name: my group\n    order: 1\n", 2,
     "groups[0].name", ["'my group' is not allowed", "letters, digits"]),
    ("name-reserved", "x.deploy.yaml", GROUP_MINIMAL + "  - name: preflight\n    order: 2\n", 4,
     "groups[1].name", ["'preflight' is reserved", "another group name"]),
    ("name-duplicate", "x.deploy.yaml", GROUP_MINIMAL + "  - order: 2\n    name: a\n", 5,
     "groups[1].name", ["duplicate group name 'a'", "groups[0] on line 2"]),
    ("unknown-group-key", "x.deploy.yaml", GROUP_MINIMAL + "    deploy_comand: echo hi\n", 4,
     "groups[0]", ["unknown key 'deploy_comand'", "Did you mean 'deploy_command'?",
                   "Known keys:"]),
    ("unknown-top-key", "x.deploy.yaml", GROUP_MINIMAL + "helth_check:\n  url: http://x\n", 4,
     None, ["unknown key 'helth_check'", "Did you mean 'health_check'?"]),
    ("unknown-health-key", "x.deploy.yaml",
     GROUP_MINIMAL + "health_check:\n  url: http://x\n  timeout: 5\n", 6, "health_check",
     ["unknown key 'timeout'", "Did you mean 'timeout_seconds'?"]),
    ("unknown-key-other-case", "x.deploy.yaml", GROUP_MINIMAL + "    Build-Command: make\n", 4,
     "groups[0]", ["unknown key 'Build-Command'", "Did you mean 'build_command'?"]),
    ("unknown-key-no-guess", "x.deploy.yaml", GROUP_MINIMAL + "    colour: blue\n", 4,
     "groups[0]", ["unknown key 'colour'", "Known keys: build_command"]),
    ("unknown-placeholder", "x.deploy.yaml", GROUP_MINIMAL + "    deploy_command: run {fiel}\n",
     4, "groups[0].deploy_command",
     ["unknown placeholder {fiel}", "Did you mean {file}?", "{{fiel}}"]),
    ("unknown-placeholder-in-hook", "x.deploy.yaml",
     GROUP_MINIMAL + "    pre_deploy:\n      - echo ok\n      - echo {targt}\n", 6,
     "groups[0].pre_deploy[1]", ["unknown placeholder {targt}", "Did you mean {target}?"]),
    ("placeholder-single-quoted", "x.deploy.yaml",
     GROUP_MINIMAL + "    deploy_command: psql -f '{file}'\n", 4, "groups[0].deploy_command",
     ["{file} stands inside single quotes", "Remove the quotes", "quoted for you"]),
    ("placeholder-double-quoted", "x.deploy.json",
     '{"groups": [{"name": "a", "order": 1,\n"deploy_command": "psql -f \\"{file}\\""}]}', 2,
     "groups[0].deploy_command", ["inside double quotes", "Remove the quotes"]),
    ("file-placeholder-in-build", "x.deploy.yaml",
     GROUP_MINIMAL + "    build_command: make {name}\n", 4, "groups[0].build_command",
     ["{name} names one file", "once per group"]),
    ("timeout-negative", "x.deploy.yaml", GROUP_MINIMAL + "    timeout_seconds: -5\n", 4,
     "groups[0].timeout_seconds", ["must be greater than 0, got -5", "no timeout"]),
    ("timeout-zero-health", "x.deploy.yaml",
     GROUP_MINIMAL + "health_check:\n  url: http://x\n  timeout_seconds: 0\n", 6,
     "health_check.timeout_seconds", ["greater than 0, got 0"]),
    ("max-parallel-zero", "x.deploy.yaml", GROUP_MINIMAL + "    max_parallel: 0\n", 4,
     "groups[0].max_parallel", ["must be at least 1, got 0"]),
    ("patterns-a-string", "x.deploy.yaml", GROUP_MINIMAL + "    file_patterns: m/*.sql\n", 4,
     "groups[0].file_patterns", ["expected a list", 'e.g. ["m/*.sql"]']),
    ("pattern-absolute", "x.deploy.yaml",
     GROUP_MINIMAL + "    file_patterns:\n      - ok/*.sh\n      - /etc/*.conf\n", 6,
     "groups[0].file_patterns[1]", ["'/etc/*.conf' is an absolute path", "relative to root"]),
    ("pattern-dotdot", "x.deploy.yaml", GROUP_MINIMAL + "    file_patterns: [a/../../*.sql]\n",
     4, "groups[0].file_patterns[0]", ["uses '..'", "inside root"]),
    ("pattern-empty", "x.deploy.yaml", GROUP_MINIMAL + "    file_patterns: ['']\n", 4,
     "groups[0].file_patterns[0]", ["must not be empty"]),
    ("root-missing", "x.deploy.yaml", "root: ../nope-not-here\n" + GROUP_MINIMAL, 1, "root",
     ["'../nope-not-here'", "does not exist", "relative to the config file"]),
    ("root-a-file", "x.deploy.yaml", "project: p\nroot: x.deploy.yaml\n" + GROUP_MINIMAL, 2,
     "root", ["is not a folder"]),
    ("status-too-high", "x.deploy.yaml",
     GROUP_MINIMAL + "health_check:\n  url: http://x\n  expected_status: 700\n", 6,
     "health_check.expected_status", ["must be at most 599, got 700", "100 to 599"]),
    ("status-too-low", "x.deploy.yaml",
     GROUP_MINIMAL + "health_check:\n  url: http://x\n  expected_status: 99\n", 6,
     "health_check.expected_status", ["at least 100, got 99"]),
    ("health-without-url", "x.deploy.yaml",
     GROUP_MINIMAL + "health_check:\n  expected_status: 200\n", 4, "health_check",
     ["missing required key 'url'"]),
    ("notify-on-bad-value", "x.deploy.yaml",
     GROUP_MINIMAL + "notify:\n  - webhook: http://x\n    on: [success, always]\n", 6,
     "notify[0].on[1]", ["expected one of 'success', 'failure', got 'always'"]),
    ("notify-on-yes", "x.deploy.yaml",
     GROUP_MINIMAL + "notify:\n  - webhook: http://x\n    on: yes\n", 6, "notify[0].on",
     ["expected a list, got 'yes'", "[success, failure]"]),
    ("notify-without-webhook", "x.deploy.yaml", GROUP_MINIMAL + "notify:\n  - on: [failure]\n",
     5, "notify[0]", ["missing required key 'webhook'"]),
    ("tracked-command-without-file", "x.deploy.yaml",
     GROUP_MINIMAL + "    file_patterns: [db/*.sql]\n    deploy_command: psql -f all.sql\n", 5,
     "groups[0].deploy_command", ["tracks migrations", "file placeholder such as {file}",
                                  "built-in SQL executor", "track_migrations: false"]),
    ("tracked-without-patterns", "x.deploy.yaml", GROUP_MINIMAL + "    track_migrations: true\n",
     4, "groups[0].track_migrations", ["has no file_patterns"]),
    ("track-migrations-yes", "x.deploy.yaml", GROUP_MINIMAL + "    track_migrations: yes\n", 4,
     "groups[0].track_migrations", ["expected true or false, got 'yes'", "YAML 1.2"]),
    ("env-var-bad-name", "x.deploy.yaml", GROUP_MINIMAL + "    required_env_vars: [OK, 1BAD]\n",
     4, "groups[0].required_env_vars[1]", ["'1BAD' is not allowed", "shell variable name"]),
    ("database-url-env-bad", "x.deploy.yaml", GROUP_MINIMAL + "    database_url_env: DB-URL\n",
     4, "groups[0].database_url_env", ["'DB-URL' is not allowed"]),
    ("group-target-undeclared", "x.deploy.yaml",
     "targets:\n  production: {}\n  staging: {}\n" + GROUP_MINIMAL + "    targets: [prodution]\n",
     7, "groups[0].targets[0]", ["'prodution' is not a target declared",
                                 "Did you mean 'production'?", "production, staging"]),
    ("target-name-space", "x.deploy.yaml", "targets:\n  prod env: {}\n" + GROUP_MINIMAL, 2,
     "targets", ["target name 'prod env'", "letters, digits"]),
    ("target-env-number", "x.deploy.yaml",
     "targets:\n  prod:\n    env:\n      PORT: 8080\n" + GROUP_MINIMAL, 4,
     "targets.prod.env.PORT", ["expected a string, got 8080", 'PORT: "8080"']),
    ("target-protected-no", "x.deploy.yaml", "targets:\n  prod:\n    protected: no\n"
     + GROUP_MINIMAL, 3, "targets.prod.protected", ["expected true or false, got 'no'"]),
    ("target-unknown-key", "x.deploy.yaml", "targets:\n  prod:\n    hostname: db\n"
     + GROUP_MINIMAL, 3, "targets.prod", ["unknown key 'hostname'", "Did you mean 'host'?"]),
    ("file-placeholder-without-patterns", "x.deploy.yaml",
     GROUP_MINIMAL + "    deploy_command: deploy {stem}\n", 4, "groups[0].deploy_command",
     ["once per matching file", "has no file_patterns"]),
    ("command-empty", "x.deploy.yaml", GROUP_MINIMAL + "    deploy_command: ''\n", 4,
     "groups[0].deploy_command", ["must not be empty"]),
    ("command-null", "x.deploy.yaml", GROUP_MINIMAL + "    build_command:\n", 4,
     "groups[0].build_command", ["expected a string, got nothing (null)"]),
    ("project-a-number", "x.deploy.yaml", "project: 123\n" + GROUP_MINIMAL, 1, "project",
     ["expected a string, got 123 (an integer)"]),
    # issue 13 §4: webhook formats and email notifications
    ("notify-format-unknown", "x.deploy.yaml",
     GROUP_MINIMAL + "notify:\n  - webhook: http://x\n    format: teams\n", 6,
     "notify[0].format", ["expected one of 'json', 'slack', got 'teams'", "Slack's"]),
    ("notify-email-http", "x.deploy.yaml", EMAIL.format(url="http://mail:25"), 6,
     "notify[0].email.url", ["expected an smtp:// or smtps:// URL, got 'http://mail:25'"]),
    ("notify-email-password-in-url", "x.deploy.yaml",
     EMAIL.format(url="smtp://u:hunter22@mail:25"), 6, "notify[0].email.url",
     ["holds a password", "password_env: SMTP_PASSWORD"]),
    ("notify-email-bad-port", "x.deploy.yaml", EMAIL.format(url="smtp://u@mail:99999"), 6,
     "notify[0].email.url", ["has a bad port"]),
    ("notify-email-no-host", "x.deploy.yaml", EMAIL.format(url="smtp://"), 6,
     "notify[0].email.url", ["names no host"]),
    ("notify-email-starttls-smtps", "x.deploy.yaml",
     EMAIL.format(url="smtps://u@mail") + "      starttls: true\n", 9,
     "notify[0].email.starttls", ["TLS from the start", "smtp:// only"]),
    ("notify-email-password-env-no-user", "x.deploy.yaml",
     EMAIL.format(url="smtp://mail:587") + "      password_env: SMTP_PASSWORD\n", 6,
     "notify[0].email.url", ["names no user, but password_env is set"]),
    ("notify-email-no-to", "x.deploy.yaml",
     EMAIL.format(url="smtp://mail").replace("      to: [ops@example.com]\n", ""), 5,
     "notify[0].email", ["missing required key 'to'"]),
    ("notify-email-bad-address", "x.deploy.yaml",
     EMAIL.format(url="smtp://mail").replace("[ops@example.com]", "[ops]"), 8,
     "notify[0].email.to[0]", ["'ops' is not an email address"]),
    ("notify-email-unknown-key", "x.deploy.yaml",
     EMAIL.format(url="smtp://mail") + "      subject: hi\n", 9, "notify[0].email",
     ["unknown key 'subject'", "password_env, starttls, to, url"]),
    ("notify-email-with-format", "x.deploy.yaml",
     EMAIL.format(url="smtp://mail") + "    format: slack\n", 9, "notify[0].format",
     ["for webhooks", "plain text"]),
    ("notify-webhook-and-email", "x.deploy.yaml",
     GROUP_MINIMAL + "notify:\n  - webhook: http://x\n"
     "    email: {url: 'smtp://m', from: a@b, to: [c@d]}\n", 6, "notify[0].email",
     ["a webhook or an email, not both"]),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "content", "line", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_config_is_one_clear_paragraph(tmp_path, name, content, line, field, words):
    path = tmp_path / name
    if content is DIR:
        path.mkdir()
    elif content is not NONE:
        write(tmp_path, name, content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    text = str(err)
    assert (err.line, err.field) == (line, field), text
    location = f"{err.path}, line {line}: " if line is not None else f"{err.path}: "
    assert text.startswith(location + (f"{field}: " if field else "")), text
    assert err.path.endswith(name)
    for word in words:
        assert word in text, text
    assert_one_paragraph(err)


def test_there_are_at_least_thirty_malformed_cases():
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED) >= 30


# --------------------------------------------------------------------------- placeholders


@pytest.mark.parametrize(
    ("command", "names"),
    [
        pytest.param("psql $DATABASE_URL -f {file}", ["file"], id="file"),
        pytest.param("cp {path} {dir}/{name}.bak {path}", ["path", "dir", "name"], id="in-order"),
        pytest.param("echo ${HOME} $HOME", [], id="shell-vars"),
        pytest.param("awk '{print $1}' {file}", ["file"], id="awk-program"),
        pytest.param("echo {{file}} }}{{", [], id="doubled-braces"),
        pytest.param('echo "{{group}}" {group}', ["group"], id="doubled-in-quotes"),
        pytest.param("find . -exec rm {} \\;", [], id="find-braces"),
        pytest.param("echo {a,b} {File} { file }", [], id="not-placeholders"),
        pytest.param("echo \\{file}", [], id="escaped-brace"),
        pytest.param("echo 'it'\\''s' {stem}", ["stem"], id="after-closed-quotes"),
        pytest.param('echo "a \\" b" {target}', ["target"], id="escaped-double-quote"),
    ],
)
def test_placeholders_are_found(command, names):
    assert placeholders(command) == names


@pytest.mark.parametrize(
    ("command", "words"),
    [
        pytest.param(
            "echo {fiel}", ["unknown placeholder {fiel}", "Did you mean {file}?"], id="unknown"
        ),
        pytest.param(
            "echo {print}", ["unknown placeholder {print}", "{{print}}"], id="unknown-no-guess"
        ),
        pytest.param(
            "echo '{file}'", ["inside single quotes", "Remove the quotes"], id="single-quotes"
        ),
        pytest.param('echo "x {name} y"', ["inside double quotes"], id="double-quotes"),
        pytest.param("echo $'{stem}'", ["inside $'...' quotes"], id="ansi-quotes"),
        pytest.param('echo "it\'s {file}"', ["inside double quotes"], id="quote-in-quotes"),
    ],
)
def test_bad_placeholders_raise_value_error(command, words):
    with pytest.raises(ValueError) as info:
        placeholders(command)
    assert isinstance(info.value, PlaceholderError)
    for word in words:
        assert word in str(info.value)
    assert "\n" not in str(info.value)


def test_placeholder_sets():
    assert FILE_PLACEHOLDERS == {
        "file",
        "path",
        "name",
        "stem",
        "dir",
        "function_name",
        "service_name",
    }
    assert PLACEHOLDERS == FILE_PLACEHOLDERS | {"target", "project", "group"}


def test_render_command_keeps_other_braces_and_shell_syntax():
    values = {"file": "a b.sql", "group": "g"}
    assert render_command("echo {{x}} ${HOME} {group}", values) == "echo {x} ${HOME} g"
    assert render_command("awk '{print $1}' {file}", values) == "awk '{print $1}' 'a b.sql'"
    assert render_command("psql --file={file}", values) == "psql --file='a b.sql'"
    with pytest.raises(PlaceholderError, match=r"no value for placeholder \{target\}"):
        render_command("echo {target}", values)
    with pytest.raises(PlaceholderError, match="inside single quotes"):
        render_command("echo '{file}'", values)


NASTY_NAMES = [
    "plain.sql",
    "with space.sql",
    "it's.sql",
    'say "hi".sql',
    "$(touch pwned1).sql",
    "`touch pwned2`.sql",
    "x; touch pwned3",
    "a && touch pwned4 || b",
    "${HOME}",
    "*",
    "-rf",
    "{file}",
    "back\\slash",
    "tab\there",
    "new\nline",
    "ünïcødé ☃",
    "",
]


@pytest.mark.parametrize("value", NASTY_NAMES, ids=[repr(n) for n in NASTY_NAMES])
def test_rendered_placeholder_reaches_bash_as_one_literal_word(tmp_path, value):
    command = render_command(
        "printf '<%s>' {file} --name={name} && printf '%s' \"$MARK\" {{done}}",
        {"file": value, "name": value},
    )
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env={"MARK": "|", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    # a leading '-' starting a word would be an option: the path placeholder gets ./
    word = "./" + value if value.startswith("-") else value
    assert result.stdout == f"<{word}><--name={value}>|{{done}}"
    assert not list(tmp_path.iterdir())  # nothing in the name was executed


# ------------------------------------------------------------------ which files are configs


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param("app.deploy.yaml", "not: ours\n", True, id="suffix-yaml-always"),
        pytest.param("app.deploy.yml", "", True, id="suffix-yml-always"),
        pytest.param("app.deploy.json", "{]", True, id="suffix-json-always"),
        pytest.param("deploy.yaml", GROUP_MINIMAL, True, id="deploy-yaml-with-groups"),
        pytest.param("deploy.yml", "groups: []\n", True, id="deploy-yml-with-groups"),
        pytest.param(
            "deploy.json", '{"project": "p", "groups": []}', True, id="deploy-json-with-groups"
        ),
        pytest.param("deploy.yaml", "steps:\n  - groups: x\n", False, id="deploy-yaml-other"),
        pytest.param("deploy.json", '{"spec": {"groups": []}}', False, id="deploy-json-nested"),
        pytest.param("deploy.yaml", "", False, id="deploy-yaml-empty"),
        pytest.param(
            "deploy.yaml",
            "groups:\n  - name: a\n   bad: [\n",
            True,
            id="deploy-yaml-broken-textual",
        ),
        pytest.param(
            "deploy.yaml", "other:\n  bad: [\n  groups: 1\n", False, id="deploy-yaml-broken-nested"
        ),
        pytest.param("deploy.json", '{\n  "groups": [,]\n', True, id="deploy-json-broken"),
        pytest.param("deploy.yaml", b"groups:\n  - name: \xff\n", True, id="deploy-bad-bytes"),
        pytest.param(
            "deploy.yaml",
            "project: p\ntargets: {t: {}}\ngroup: []\n",
            True,
            id="deploy-yaml-groups-misspelt",
        ),
        pytest.param(
            "deploy.yaml",
            "project: shop\nimage: x\n",
            False,
            id="deploy-yaml-other-tool-with-project",
        ),
        pytest.param(
            "deploy.json",
            '{"project": "p", "targets": {}}',
            True,
            id="deploy-json-project-and-targets",
        ),
        pytest.param("deploy.txt", "groups: []\n", False, id="other-suffix"),
        pytest.param("my-deploy.yaml", "groups: []\n", False, id="other-name"),
        pytest.param("app.deploy.toml", "groups = []\n", False, id="deploy-toml"),
    ],
)
def test_is_config_file(tmp_path, name, content, expected):
    assert is_config_file(write(tmp_path, name, content)) is expected


def test_is_config_file_on_missing_file_and_folder(tmp_path):
    assert is_config_file(tmp_path / "deploy.yaml") is False
    (tmp_path / "deploy.json").mkdir()
    assert is_config_file(tmp_path / "deploy.json") is False


# --------------------------------------------------------------------------- the schema


def test_schema_is_valid_and_documents_every_key():
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: dict, where: str) -> None:
        for key, sub in node.get("properties", {}).items():
            assert sub.get("description") or sub.get("$ref"), f"{where}.{key} has no description"
            walk(sub, f"{where}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{where}.{key}")

    walk(document, "")
    for name, definition in document["$defs"].items():
        assert definition.get("description"), name
        walk(definition, name)
    group_keys = set(document["$defs"]["group"]["properties"])
    assert group_keys == {
        "name", "order", "file_patterns", "pre_deploy", "build_command", "test_command",
        "deploy_command", "post_deploy", "required_env_vars", "track_migrations",
        "database_url_env", "max_parallel", "timeout_seconds", "targets", "down_file",
        "rollback_command", "lock_timeout", "lock_retries", "statement_timeout", "lint",
    }  # fmt: skip
    assert set(document["properties"]) == {
        "$schema", "project", "project_id", "root", "groups", "health_check", "notify",
        "targets", "atomic",
    }  # fmt: skip


def test_schema_key_is_allowed_for_editors(tmp_path):
    config = load_text(
        tmp_path,
        '{"$schema": "./config_schema.json", "groups": [{"name": "a", "order": 1}]}',
        "a.deploy.json",
    )
    assert config.groups[0].name == "a"


def test_an_invalid_glob_class_fails_validation_not_collection(pytester: pytest.Pytester):
    write_project(
        pytester,
        {"groups": [{"name": "m", "order": 1, "file_patterns": ["m/[z-a].sql"]}]},
    )
    result = pytester.runpytest("--deploy-target=t")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*groups[[]0[]].file_patterns[[]0[]]*invalid character class*"])
    assert "Traceback" not in result.stdout.str() and "re.error" not in result.stdout.str()


def test_an_smtp_password_in_the_url_is_not_repeated(tmp_path):
    path = write(tmp_path, "x.deploy.yaml", EMAIL.format(url="smtp://u:hunter22@mail:25"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "hunter22" not in str(info.value)


def test_email_and_slack_notifications_load(tmp_path):
    path = write(
        tmp_path, "x.deploy.yaml",
        GROUP_MINIMAL + "notify:\n  - webhook: http://x\n    format: slack\n"
        "  - email:\n      url: smtp://deploy@127.0.0.1:2525\n      from: deploy@example.com\n"
        "      to: [ops@example.com, 'Dev <dev@example.com>']\n"
        "      password_env: SMTP_PASSWORD\n      starttls: true\n    on: [failure]\n",
    )  # fmt: skip
    slack, mail = load_config(path).notify
    assert (slack.webhook, slack.format, slack.email) == ("http://x", "slack", None)
    assert mail.webhook is None and mail.format == "json" and mail.on == ("failure",)
    assert mail.email is not None and mail.email.to == ("ops@example.com", "Dev <dev@example.com>")
    assert (mail.email.password_env, mail.email.starttls) == ("SMTP_PASSWORD", True)
