"""docker-compose.yml keeps the two database roles apart (docker cannot run here: the file is
checked as data). Only the one-shot migration knows the owner's URL; everything else connects as
the application role, which db-init creates with only DML."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_URL = "postgresql://masivo:${MASIVO_DB_PASSWORD:?set MASIVO_DB_PASSWORD}@postgres:5432/masivo"
OWNER_URL = (
    "postgresql://masivo_owner:${MASIVO_DB_OWNER_PASSWORD:?set MASIVO_DB_OWNER_PASSWORD}"
    "@postgres:5432/masivo"
)
MASIVO_SERVICES = ["db-init", "migrate", "web", "worker", "beat"]


def test_every_masivo_service_connects_as_the_application_role():
    assert {name: SERVICES[name]["environment"]["DATABASE_URL"] for name in MASIVO_SERVICES} == {
        name: APP_URL for name in MASIVO_SERVICES
    }


def test_only_the_migration_knows_the_owner():
    has_owner = {
        name: "DATABASE_OWNER_URL" in SERVICES[name]["environment"] for name in MASIVO_SERVICES
    }
    assert has_owner == {name: name == "migrate" for name in MASIVO_SERVICES}
    assert SERVICES["migrate"]["environment"]["DATABASE_OWNER_URL"] == OWNER_URL
    assert SERVICES["migrate"]["command"] == ["python", "-m", "django", "migrate", "--noinput"]


def test_db_init_bootstraps_both_roles_with_the_cli():
    command = SERVICES["db-init"]["command"]
    assert command[:3] == ["masivo", "db", "bootstrap"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options == {
        "--admin-url": "postgresql://postgres:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
        "@postgres:5432/postgres",
        "--app-url": APP_URL,
        "--owner-url": OWNER_URL,
    }


def test_the_order_is_bootstrap_then_migrate_then_the_processes():
    assert SERVICES["migrate"]["depends_on"] == {
        "db-init": {"condition": "service_completed_successfully"}
    }
    for name in ["web", "worker", "beat"]:
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
