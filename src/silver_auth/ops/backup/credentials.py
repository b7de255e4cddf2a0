"""`env.backup`: the offsite credentials, in dotenv format, readable by its owner alone (G23).

restic: `RESTIC_REPOSITORY` (or `RESTIC_REPOSITORY_FILE`), `RESTIC_PASSWORD` (or `RESTIC_PASSWORD_FILE`,
`RESTIC_PASSWORD_COMMAND`) and whatever the backend needs (`AWS_ACCESS_KEY_ID`, `B2_ACCOUNT_KEY`…): every
variable of the file reaches `restic` through its environment, never its arguments.
age: `SILVER_BACKUP_AGE_RECIPIENT` (one or more `age1…` public keys) and `SILVER_BACKUP_AGE_DIR` (where the
encrypted files go: a mounted remote); `SILVER_BACKUP_AGE_IDENTITY_FILE` (the private key) only where
backups are restored (the drill host)."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from pyrage import x25519

from silver_auth.core.redaction import REDACTED, redact_text
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.files import permission_problem

AGE_RECIPIENT = "SILVER_BACKUP_AGE_RECIPIENT"
AGE_DIR = "SILVER_BACKUP_AGE_DIR"
AGE_IDENTITY_FILE = "SILVER_BACKUP_AGE_IDENTITY_FILE"
OUR_KEYS = frozenset({AGE_RECIPIENT, AGE_DIR, AGE_IDENTITY_FILE})
RESTIC_PASSWORD_SOURCES = ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND")
SECRET_NAME = re.compile(r"PASS|SECRET|KEY|TOKEN|CREDENTIAL|AUTH|SAS", re.IGNORECASE)
RECIPIENT_SEPARATOR = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class ResticTarget:
    environment: dict[str, str]
    """Every variable of env.backup: restic and its backend read what they need."""


@dataclass(frozen=True, slots=True)
class AgeTarget:
    recipients: tuple[str, ...]
    directory: Path
    identity_file: Path | None


@dataclass(frozen=True, slots=True)
class BackupCredentials:
    path: Path
    restic: ResticTarget | None
    age: AgeTarget | None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def targets(self) -> list[str]:
        return [name for name, target in (("restic", self.restic), ("age", self.age)) if target is not None]

    def scrub(self, text: str) -> str:
        """`text` with every secret of env.backup (and every secret-shaped value) taken out."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return redact_text(text)


def _secret_values(values: dict[str, str]) -> tuple[str, ...]:
    return tuple(
        value
        for name, value in values.items()
        if value and SECRET_NAME.search(name) and not name.endswith("_FILE") and name not in OUR_KEYS
    )


def read_credentials(path: Path) -> BackupCredentials:
    """env.backup parsed and checked; BackupError with one line naming what is wrong (never a value)."""
    problem = permission_problem(path)
    if problem is not None:
        if not path.exists():
            raise BackupError(
                f"no offsite credentials: {problem} (create it with `silver-auth backup-env`, mode 0600; "
                "or make a local copy only with `silver-auth backup --local-only`)"
            )
        raise BackupError(f"env.backup refused (G23): {problem}")
    try:
        parsed = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path} cannot be read: {type(exc).__name__}") from None
    empty = sorted(name for name, value in parsed.items() if not value)
    if empty:
        raise BackupError(f"{path}: {', '.join(empty)} has no value")
    values = {name: value for name, value in parsed.items() if value}
    unknown = sorted(name for name in values if name.startswith("SILVER_") and name not in OUR_KEYS)
    if unknown:
        raise BackupError(
            f"{path}: unknown variable {', '.join(unknown)} (known: {', '.join(sorted(OUR_KEYS))})"
        )
    credentials = BackupCredentials(
        path, _restic(path, values), _age(path, values), secrets=_secret_values(values)
    )
    if not credentials.targets:
        raise BackupError(
            f"{path} names no offsite target: set RESTIC_REPOSITORY and RESTIC_PASSWORD (restic), or "
            f"{AGE_RECIPIENT} and {AGE_DIR} (age)"
        )
    return credentials


def _restic(path: Path, values: dict[str, str]) -> ResticTarget | None:
    if not any(name.startswith("RESTIC_REPOSITORY") for name in values):
        if any(name.startswith("RESTIC_") for name in values):
            raise BackupError(f"{path}: RESTIC_REPOSITORY (or RESTIC_REPOSITORY_FILE) is missing")
        return None
    if not any(source in values for source in RESTIC_PASSWORD_SOURCES):
        raise BackupError(
            f"{path}: set one of {', '.join(RESTIC_PASSWORD_SOURCES)} for the restic repository"
        )
    for name in ("RESTIC_PASSWORD_FILE", "RESTIC_REPOSITORY_FILE"):
        if name in values and (problem := permission_problem(Path(values[name]))) is not None:
            raise BackupError(f"{name} refused (G23): {problem}")
    return ResticTarget(dict(values))


def _age(path: Path, values: dict[str, str]) -> AgeTarget | None:
    if AGE_RECIPIENT not in values and AGE_DIR not in values:
        if AGE_IDENTITY_FILE in values:
            raise BackupError(f"{path}: {AGE_IDENTITY_FILE} without {AGE_RECIPIENT} and {AGE_DIR}")
        return None
    for name in (AGE_RECIPIENT, AGE_DIR):
        if name not in values:
            raise BackupError(f"{path}: {name} is missing (age needs {AGE_RECIPIENT} and {AGE_DIR})")
    recipients = tuple(part for part in RECIPIENT_SEPARATOR.split(values[AGE_RECIPIENT]) if part)
    for recipient in recipients:
        try:
            x25519.Recipient.from_str(recipient)
        except Exception:  # pyrage raises its own RecipientError (or ValueError) for a malformed key
            raise BackupError(
                f"{path}: {AGE_RECIPIENT} holds something that is not an age1… public key"
            ) from None
    directory = Path(values[AGE_DIR])
    if not directory.is_dir():  # a remote that is not mounted must not turn into a local folder
        raise BackupError(f"{AGE_DIR} {directory} is not a directory (is the remote mounted?)")
    identity = Path(values[AGE_IDENTITY_FILE]) if AGE_IDENTITY_FILE in values else None
    return AgeTarget(recipients, directory, identity)


def load_identities(target: AgeTarget) -> list[x25519.Identity]:
    """The age private keys of SILVER_BACKUP_AGE_IDENTITY_FILE (age-keygen's format), owner-only (G23)."""
    if target.identity_file is None:
        raise BackupError(f"{AGE_IDENTITY_FILE} is not set in env.backup: the drill needs it to decrypt")
    problem = permission_problem(target.identity_file)
    if problem is not None:
        raise BackupError(f"{AGE_IDENTITY_FILE} refused (G23): {problem}")
    identities = []
    for line in target.identity_file.read_text().splitlines():
        if line.strip().startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(x25519.Identity.from_str(line.strip()))
            except Exception:
                raise BackupError(f"{target.identity_file} holds a malformed age identity") from None
    if not identities:
        raise BackupError(f"{target.identity_file} holds no AGE-SECRET-KEY-… line")
    return identities


def _private_write(path: Path, content: str, *, replace: bool) -> None:
    """Write `content` to a new owner-only file at `path` (G23); an existing one only with `replace`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists() and not replace:
        raise BackupError(f"{path} exists already: keep it, or pass --force to replace it")
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        if replace:
            os.replace(scratch, path)
        else:
            try:
                os.link(scratch, path)  # fails if someone made it meanwhile: never overwritten unasked
            except FileExistsError:
                raise BackupError(f"{path} exists already: keep it, or pass --force to replace it") from None
    finally:
        if Path(scratch).exists():
            os.unlink(scratch)


def write_env_backup(
    path: Path,
    *,
    restic_repository: str | None = None,
    age_recipient: str | None = None,
    age_dir: Path | None = None,
    age_new_identity: Path | None = None,
    age_identity_file: Path | None = None,
    replace: bool = False,
) -> list[str]:
    """Create env.backup 0600 (a generated restic password; or an age recipient, optionally a new
    identity written 0600 beside it); answers what it configured, never a secret."""
    if path.exists() and not replace:
        raise BackupError(f"{path} exists already: keep it, or pass --force to replace it")
    if age_dir is not None and not age_dir.is_dir():
        raise BackupError(f"{age_dir} is not a directory (is the remote mounted?)")
    lines = ["# Offsite backup credentials for `silver-auth backup` (G22, G23): keep this file 0600."]
    done = []
    if restic_repository:
        lines += [f"RESTIC_REPOSITORY={restic_repository}", f"RESTIC_PASSWORD={secrets.token_urlsafe(32)}"]
        done.append(f"restic repository {restic_repository} with a newly generated password")
    if age_new_identity is not None:
        identity = x25519.Identity.generate()
        created = f"# public key: {identity.to_public()}\n{identity}\n"
        _private_write(age_new_identity, created, replace=False)
        age_recipient, age_identity_file = str(identity.to_public()), age_new_identity
        done.append(f"a new age identity in {age_new_identity} (mode 0600)")
    if age_recipient or age_dir:
        if not (age_recipient and age_dir):
            raise BackupError(
                "age needs both a recipient (--age-recipient or --age-new-identity) and --age-dir"
            )
        lines += [f"{AGE_RECIPIENT}={age_recipient}", f"{AGE_DIR}={age_dir}"]
        if age_identity_file is not None:
            lines.append(f"{AGE_IDENTITY_FILE}={age_identity_file}")
        done.append(f"age-encrypted files in {age_dir}")
    if not done:
        raise BackupError("name an offsite target: --restic-repository, or --age-dir with --age-recipient")
    _private_write(path, "\n".join(lines) + "\n", replace=replace)
    read_credentials(path)  # what was written reads back (the age directory exists, the key parses)
    return done
