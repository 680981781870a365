"""Static checks of what cannot run here (no Docker engine): docker-compose.yml, the
Dockerfile, submission.yml and .env.example must agree with the contract and the CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from paygate.cli import build_parser
from paygate.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "TEST_MODE",
    "TEST_PROCESSING_DELAY",
    "TEST_PAYMENT_SUCCESS",
    "UPI_SUCCESS_RATE",
    "CARD_SUCCESS_RATE",
    "PROCESSING_DELAY_MIN",
    "PROCESSING_DELAY_MAX",
    "WEBHOOK_RETRY_INTERVALS_TEST",
    "TEST_MERCHANT_EMAIL",
    "TEST_API_KEY",
    "TEST_API_SECRET",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def paygate_subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_compose_publishes_only_the_web_ports_on_the_contract_ports():
    """PostgreSQL and Redis are reachable on the stack's network only, never from the host."""
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "api", "worker", "dashboard", "checkout"}
    ports = {name: service.get("ports", []) for name, service in services.items()}
    assert ports == {
        "api": ["8000:8000"],
        "dashboard": ["3000:3000"],
        "checkout": ["3001:3001"],
        "worker": [],
        "postgres": [],
        "redis": [],
    }
    for service in services.values():
        assert "expose" not in service and service.get("network_mode") != "host"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")


# The base file's development defaults (unset variables), stated in its header and the docs.
DEV_DEFAULTS = {"POSTGRES_PASSWORD": "gateway_pass", "REDIS_PASSWORD": "gateway_redis_pass"}
# What a developer's .env may hold instead (docker-compose.yml's header says how to make one).
DEV_PASSWORDS = {"POSTGRES_PASSWORD": "pg0123456789abcdef", "REDIS_PASSWORD": "rd0123456789abcdef"}


def contract_docker_db() -> dict[str, str]:
    """docs/CONTRACT.md section 0, row "docker DB": database, user and password."""
    text = (ROOT / "docs" / "CONTRACT.md").read_text()
    row = re.search(r"^\| docker DB \|(.*)\|$", text, re.M)[1]
    return dict(re.findall(r"(database|user|password) `([^`]+)`", row))


def password_places(services: dict) -> dict[str, str]:
    """Every place docker-compose writes a PostgreSQL or Redis password, by what reads it."""
    redis = services["redis"]
    command = redis["command"]
    return {
        "postgres POSTGRES_PASSWORD": services["postgres"]["environment"]["POSTGRES_PASSWORD"],
        "redis --requirepass": command[command.index("--requirepass") + 1],
        "redis REDISCLI_AUTH": redis["environment"]["REDISCLI_AUTH"],
    }


def test_compose_passwords_come_from_the_environment_with_the_contracts_defaults():
    """A fresh clone's plain ``docker-compose up -d --build`` works (contract section 8), with
    the contract's database password; POSTGRES_PASSWORD / REDIS_PASSWORD replace both."""
    assert contract_docker_db() == {
        "database": "payment_gateway",
        "user": "gateway_user",
        "password": DEV_DEFAULTS["POSTGRES_PASSWORD"],
    }
    services = compose()["services"]
    pg = services["postgres"]["environment"]
    assert (pg["POSTGRES_DB"], pg["POSTGRES_USER"]) == ("payment_gateway", "gateway_user")
    for place, value in password_places(services).items():
        name = "POSTGRES_PASSWORD" if place.startswith("postgres") else "REDIS_PASSWORD"
        assert DEFAULTED.fullmatch(value), f"{place}: {value!r} is not ${{{name}:-default}}"
        assert DEFAULTED.fullmatch(value).groups() == (name, DEV_DEFAULTS[name]), place
        assert resolve(value, {}) == DEV_DEFAULTS[name]
        assert resolve(value, DEV_PASSWORDS) == DEV_PASSWORDS[name]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert CONTRACT_ENV <= set(env), f"{name} lacks {CONTRACT_ENV - set(env)}"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        # Every value parses as our settings would parse it, after compose's substitution.
        settings = Settings.from_env({k: resolve(v, {}) for k, v in env.items()})
        assert settings.database_url == (
            "postgresql://gateway_user:gateway_pass@postgres:5432/payment_gateway"
        )
        assert settings.redis_url == "redis://:gateway_redis_pass@redis:6379/0"
        settings = Settings.from_env({k: resolve(v, DEV_PASSWORDS) for k, v in env.items()})
        assert settings.database_url == (
            "postgresql://gateway_user:pg0123456789abcdef@postgres:5432/payment_gateway"
        )
        assert settings.redis_url == "redis://:rd0123456789abcdef@redis:6379/0"


def test_compose_writes_passwords_only_as_defaults_and_documents_every_variable():
    text = (ROOT / "docker-compose.yml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    # Outside a ${VAR:-default}, no password: not in a URL, not on a command line.
    for secret in (*DEV_DEFAULTS.values(), "requirepass ", "POSTGRES_PASSWORD: gateway"):
        assert secret not in DEFAULTED.sub("", body), f"{secret!r} outside ${{VAR:-...}}"
    for path, value in secrets_in(compose()):
        if re.search(r"PASSWORD|AUTH", path):
            assert DEFAULTED.fullmatch(value), f"{path} holds a literal: {value!r}"
        if "@" in value:
            assert DEFAULTED.search(value.split("@")[0]), f"{path} holds a literal: {value!r}"
    # The defaults are said, with how to replace them, where a user looks.
    header = text.split("x-paygate-env")[0]
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "operations.md").read_text()
    for name, default in DEV_DEFAULTS.items():
        assert name in header and default in header and ".env" in header
        assert f"`{default}`" in docs, f"no doc says {name} defaults to {default}"
    # A required variable's message says what to do; every variable is in the docs.
    for file in ("docker-compose.yml", "docker-compose.prod.yml"):
        body = "\n".join(
            line for line in (ROOT / file).read_text().splitlines() if not line.startswith("#")
        )
        names = set(re.findall(r"\$\{([A-Z_]+)", body))
        assert names, file
        for variable in names:
            assert f"`{variable}`" in docs, f"{file} uses {variable}, which no doc describes"
        for match in re.finditer(r"\$\{[A-Z_]+:\?([^}]*)\}", body):
            assert match[1].startswith("set "), f"{file}: an unset variable must say what to do"


def test_the_env_file_is_kept_out_of_git():
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_compose_commands_are_real_paygate_subcommands():
    services = compose()["services"]
    known = paygate_subcommands()
    for name in APP_SERVICES:
        command = services[name]["command"]
        argv = command if isinstance(command, list) else shlex.split(command)
        assert argv[0] == "paygate" and argv[1] == name and argv[1] in known
        build_parser().parse_args(argv[1:])  # the flags exist too
    assert services["worker"]["stop_signal"] == "SIGINT"
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name]


def test_dockerfile_copies_what_exists_and_installs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", text, re.M)
    assert re.search(r'CMD \["paygate", "api"\]', text)


def test_submission_yml_has_the_five_lists():
    data = yaml.safe_load((ROOT / "submission.yml").read_text())
    assert list(data) == ["setup", "start", "test", "verify", "shutdown"]
    assert all(
        isinstance(v, list) and v and all(isinstance(c, str) for c in v) for v in data.values()
    )
    verify = " ".join(data["verify"])
    for target in ("/health", "/api/v1/test/jobs/status", ":3000", ":3001/checkout.js"):
        assert target in verify
    # The stack needs no preparation beyond the contract's commands (no .env, no passwords).
    assert data["setup"] == ["docker-compose build"]
    assert data["start"][0] == "docker-compose up -d"
    commands = " ".join(c for v in data.values() for c in v)
    assert not re.search(r"PASSWORD|\.env\b", commands)


def test_env_example_names_only_settings_we_read():
    names = [
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
        and not line.startswith("# ")
        or line.startswith("# ")
        and re.match(r"# [A-Z_]+=", line)
    ]
    source = "".join(p.read_text() for p in (ROOT / "paygate").rglob("*.py"))
    source += "".join(p.read_text() for p in (ROOT / "plugins").rglob("*.py"))
    for name in names:
        assert f'"{name}"' in source, f".env.example mentions {name}, which nothing reads"


# -- the production override (issue 15) --------------------------------------------------------

PROD_FILE = ROOT / "docker-compose.prod.yml"
APP_SERVICES = ("api", "worker", "dashboard", "checkout")
# The contract's development values: none may appear in the production override.
KNOWN_SECRETS = (
    "gateway_pass",
    "gateway_redis_pass",
    "secret_test_xyz789",
    "key_test_abc123",
    "whsec_test_abc123",
)
REQUIRED = re.compile(r"\$\{(?P<name>[A-Z_]+):\?(?P<message>[^}]+)\}")
DEFAULTED = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags: ``!reset`` (drop the base value), ``!override``."""


def _tagged(tag: str):
    def construct(loader, node):
        if isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node)
        else:
            value = loader.construct_scalar(node)
        return (tag, value)

    return construct


ComposeLoader.add_constructor("!reset", _tagged("reset"))
ComposeLoader.add_constructor("!override", _tagged("override"))


def secrets_in(node, path=""):
    """(path, value) of every value that is or may hold a secret: by name, or a URL."""
    if isinstance(node, tuple):
        node = node[1]
    if isinstance(node, dict):
        for key, value in node.items():
            yield from secrets_in(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from secrets_in(value, f"{path}[{index}]")
    elif re.search(r"PASSWORD|SECRET|AUTH|requirepass", path) or "://" in str(node):
        yield path, str(node)


def production_override() -> dict:
    return yaml.load(PROD_FILE.read_text(), Loader=ComposeLoader)


def merged(base, override):
    """What Compose does with ``-f docker-compose.yml -f docker-compose.prod.yml``: mappings
    merge key by key, ``!reset`` and ``!override`` replace, other values replace."""
    if isinstance(override, tuple):
        return override[1]
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for key, value in override.items():
            result[key] = merged(base.get(key), value)
        return result
    return override


def resolve(value: str, env: dict[str, str]) -> str:
    value = REQUIRED.sub(lambda m: env[m[1]], str(value))
    return DEFAULTED.sub(lambda m: env.get(m[1], m[2]), value)


def test_compose_says_it_is_for_development_and_names_the_override():
    text = (ROOT / "docker-compose.yml").read_text()
    header = text.split("x-paygate-env")[0]
    assert "FOR DEVELOPMENT ONLY" in header and "docker-compose.prod.yml" in header


def test_the_production_override_parses_and_names_only_known_services():
    override = production_override()
    assert set(override["services"]) <= set(compose()["services"])
    assert set(APP_SERVICES) <= set(override["services"])


def test_the_production_override_sets_production_mode_and_requires_every_secret():
    """Merged over the base, no development default is left: the secret key and both passwords
    must be set (Compose refuses to start otherwise) and end up where they are read."""
    stack = merged(compose(), production_override())["services"]
    env = {
        "PAYGATE_SECRET_KEY": "k" * 64,
        "POSTGRES_PASSWORD": "pgpass0123456789",
        "REDIS_PASSWORD": "redispass0123456789",
    }

    def required(value, name: str, where: str) -> None:
        found = [m for m in REQUIRED.finditer(str(value)) if m["name"] == name]
        assert found, f"{where}: {name} is not required (${{{name}:?set ...}})"
        for match in found:
            assert match["message"].startswith(f"set {name}"), f"{where}: {match[0]}"

    for name in APP_SERVICES:
        raw = stack[name]["environment"]
        assert raw["PAYGATE_ENV"] == "production"
        required(raw["PAYGATE_SECRET_KEY"], "PAYGATE_SECRET_KEY", name)
        required(raw["DATABASE_URL"], "POSTGRES_PASSWORD", f"{name} DATABASE_URL")
        required(raw["REDIS_URL"], "REDIS_PASSWORD", f"{name} REDIS_URL")
        values = {key: resolve(value, env) for key, value in raw.items()}
        settings = Settings.from_env(values)
        assert settings.is_production and settings.secret_key == env["PAYGATE_SECRET_KEY"]
        assert settings.database_url == (
            "postgresql://gateway_user:pgpass0123456789@postgres:5432/payment_gateway"
        )
        assert settings.redis_url == "redis://:redispass0123456789@redis:6379/0"
        assert settings.allow_private_webhook_urls is False
    for place, value in password_places(stack).items():
        name = "POSTGRES_PASSWORD" if place.startswith("postgres") else "REDIS_PASSWORD"
        assert REQUIRED.fullmatch(value), f"{place}: {value!r}"
        required(value, name, place)
        assert resolve(value, env) == env[name]
    # No ${VAR:-default} of a secret survives the merge anywhere in the production stack.
    for path, value in [*secrets_in(stack), *(("command", str(stack["redis"]["command"])),)]:
        for match in DEFAULTED.finditer(value):
            assert not re.search(r"PASSWORD|SECRET|KEY", match[1]), f"{path}: {match[0]}"
    assert "ports" not in stack["postgres"] and "ports" not in stack["redis"]
    # The redis command is replaced whole (Compose's !override), not appended to.
    assert production_override()["services"]["redis"]["command"][0] == "override"


def test_the_production_override_publishes_no_database_and_holds_no_literal_secret():
    text = PROD_FILE.read_text()
    for secret in KNOWN_SECRETS:
        assert secret not in text
    stack = merged(compose(), production_override())["services"]
    assert stack["postgres"].get("ports", []) == [] and stack["redis"].get("ports", []) == []
    for name in ("api", "dashboard", "checkout"):
        (port,) = stack[name]["ports"]
        assert port.startswith("${PAYGATE_PUBLISH_HOST:-127.0.0.1}:")

    for path, value in secrets_in(production_override()):
        if "PASSWORD" in path or "SECRET" in path or "AUTH" in path:
            assert REQUIRED.fullmatch(value), f"{path} holds a literal: {value!r}"
        if "@" in value:  # a URL with credentials: the password part is a required variable
            assert REQUIRED.search(value.split("@")[0]), f"{path} holds a literal: {value!r}"


def test_the_image_listens_on_every_interface_of_its_container():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^\s*PAYGATE_BIND=0\.0\.0\.0", text, re.M)
    assert Settings().bind_host == "127.0.0.1"  # everywhere else, loopback


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)s", str(value))
    assert match, f"stop_grace_period {value!r} is not N s"
    return float(match[1])


def stack_problems(base: dict, override: dict) -> list[str]:
    """What a second project or ``--scale worker=N`` needs (no fixed container names), a stop
    longer than PAYGATE_STOP_TIMEOUT, and production settings Compose would otherwise drop."""
    problems = []
    stop = Settings.from_env({}).stop_timeout_seconds
    for name, service in base["services"].items():
        if "container_name" in service:
            problems.append(f"{name}: container_name {service['container_name']}")
    stack = merged(base, override)["services"]
    for name in APP_SERVICES:
        grace = stack[name].get("stop_grace_period")
        if grace is None or _seconds(grace) <= stop:
            problems.append(f"{name}: stop_grace_period {grace} not above {stop:g} s")
        env = stack[name]["environment"]
        for variable in (
            "PAYGATE_TRUSTED_PROXIES",
            "PAYGATE_FRAME_ANCESTORS",
            "PAYGATE_CORS_ORIGINS",
        ):
            if "${" + variable not in str(env.get(variable, "")):
                problems.append(f"{name}: {variable} not passed from the environment")
    return problems


def test_the_stack_scales_stops_gracefully_and_passes_the_proxy_and_embedding_settings():
    base, override = compose(), production_override()
    assert stack_problems(base, override) == []
    planted = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    planted["services"]["worker"]["container_name"] = "gateway_worker"
    planted["services"]["api"]["stop_grace_period"] = "10s"
    assert len(stack_problems(planted, override)) == 2
    bare = production_override()
    del bare["x-production-env"]["PAYGATE_TRUSTED_PROXIES"]
    for name in APP_SERVICES:
        bare["services"][name]["environment"] = bare["x-production-env"]
    assert len(stack_problems(base, bare)) == len(APP_SERVICES)


# -- the Python client (issue 19) ---------------------------------------------------------------


def test_the_python_client_is_its_own_distribution_and_part_of_the_gateways():
    """sdk/python is installable alone (``pip install ./sdk/python``: requests only, the same
    floor as the gateway's) and setup.cfg installs the same package with the gateway. sdk/ is the
    package paygate.sdk, so sdk/python must not be one of its subpackages."""
    import configparser
    import tomllib

    client = ROOT / "sdk" / "python"
    assert not (client / "__init__.py").exists()
    assert (client / "paygate_client" / "py.typed").is_file()
    assert (client / "README.md").is_file()
    project = tomllib.loads((client / "pyproject.toml").read_text())["project"]
    assert project["name"] == "paygate-client"
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    options = config["options"]
    gateway_requests = [
        line.strip() for line in options["install_requires"].splitlines() if line.strip()
    ]
    assert project["dependencies"] == [r for r in gateway_requests if r.startswith("requests")]
    package_dir = dict(
        line.replace(" ", "").split("=") for line in options["package_dir"].split("\n") if line
    )
    assert package_dir["paygate_client"] == "sdk/python/paygate_client"
    assert "paygate_client" in options["packages"].split()
    assert "py.typed" in config["options.package_data"]["paygate_client"]


# -- PostgreSQL's connection limit in the Compose stack -----------------------------------------


def compose_max_connections(data: dict) -> int:
    command = data["services"]["postgres"].get("command") or []
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "-c" and value.startswith("max_connections="):
            return int(value.split("=", 1)[1])
    return 100  # PostgreSQL's default


def stack_connections_at_most(data: dict, worker_replicas: int = 4) -> int:
    """Every Paygate service's pools at their maxima, from the settings' defaults: gunicorn
    services API_WORKERS x POOL_MAX, the worker AUTO_WORKER_PROCESSES_MAX x POOL_MAX per replica."""
    from paygate.config import AUTO_WORKER_PROCESSES_MAX

    defaults = Settings.from_env({})
    total = 0
    for service in data["services"].values():
        command = service.get("command") or []
        if command[:1] != ["paygate"]:
            continue
        if command[1] == "worker":
            total += worker_replicas * AUTO_WORKER_PROCESSES_MAX * defaults.db_pool_max
        elif command[1] in {"api", "dashboard", "checkout"}:
            total += defaults.api_workers * defaults.db_pool_max
    return total


def test_compose_postgres_takes_every_pool_at_its_maximum():
    """Four worker replicas (docs/operations.md's `--scale worker=4`), every pool full, and ten
    connections for admin commands and the superuser reserve, under max_connections."""
    data = compose()
    needed = stack_connections_at_most(data) + 10
    assert stack_connections_at_most(data, worker_replicas=1) == 160
    assert compose_max_connections(data) >= needed
    del data["services"]["postgres"]["command"]
    assert compose_max_connections(data) < needed  # the default is not enough: the test can fail
