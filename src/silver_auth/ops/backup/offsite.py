"""The encrypted offsite copy (G22): a restic repository (any restic backend), or age-encrypted files in
a directory (a mounted remote). Credentials come from env.backup and reach restic only through its
environment; every message that leaves here is scrubbed of them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyrage
from pyrage import x25519

from silver_auth.ops.backup.credentials import AgeTarget, BackupCredentials, ResticTarget, load_identities
from silver_auth.ops.backup.errors import BackupError

TAG = "silver-auth"
BACKUP_ID_PREFIX = "bkp_"
AGE_SUFFIX = ".tar.age"
NO_REPOSITORY = "Is there a repository at the following location?"
RESTIC_TIME = re.compile(
    r"(?P<second>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?P<fraction>\.\d+)?(?P<zone>[Zz]|[+-]\d\d:\d\d)"
)
PASSED_THROUGH = ("PATH", "HOME", "XDG_CACHE_HOME", "TMPDIR", "LANG", "LC_ALL")


@dataclass(frozen=True, slots=True)
class OffsiteCopy:
    """One backup as the offsite side holds it."""

    kind: str
    """`restic` or `age`."""
    backup_id: str
    reference: str
    """The restic snapshot id, or the encrypted file's path."""
    time: datetime | None = None


class Restic:
    def __init__(self, target: ResticTarget, credentials: BackupCredentials) -> None:
        self.target, self.credentials = target, credentials

    def _environment(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        env.setdefault("PATH", "/usr/bin:/bin")
        return env | self.target.environment

    async def _run(
        self, *args: str, cwd: Path | None = None, quiet_failure: bool = False
    ) -> tuple[int, str, str]:
        executable = shutil.which("restic", path=self._environment()["PATH"])
        if executable is None:
            raise BackupError("restic not found: install it (Debian: apt-get install restic)")
        process = await asyncio.create_subprocess_exec(
            executable,
            *args,
            cwd=cwd,
            env=self._environment(),
            stdin=asyncio.subprocess.DEVNULL,  # never a password prompt
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
        if process.returncode != 0 and not quiet_failure:
            raise BackupError(f"restic {args[0]} failed: {self._first_line(err, process.returncode)}")
        return int(process.returncode or 0), out, err

    def _first_line(self, stderr: str, code: int | None) -> str:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        fatal = next((line for line in lines if line.startswith("Fatal:")), lines[0] if lines else "")
        return self.credentials.scrub(fatal or f"exit code {code}")

    async def ensure_repository(self) -> bool:
        """Create the repository if there is none yet; True if it was created."""
        code, _, err = await self._run("cat", "config", quiet_failure=True)
        if code == 0:
            return False
        if NO_REPOSITORY not in err:
            raise BackupError(f"restic cannot open the repository: {self._first_line(err, code)}")
        await self._run("init")
        return True

    async def send(self, directory: Path, backup_id: str) -> OffsiteCopy:
        await self.ensure_repository()
        # Run beside the backup's directory: restic then restores it as `<backup id>/…`.
        _, out, _ = await self._run(
            "backup", "--json", "--tag", TAG, "--tag", backup_id, directory.name, cwd=directory.parent
        )
        snapshot = ""
        for line in out.splitlines():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("message_type") == "summary":
                snapshot = str(message.get("snapshot_id", ""))
        if not snapshot:
            raise BackupError("restic backup reported no snapshot")
        return OffsiteCopy("restic", backup_id, snapshot)

    async def newest(self) -> OffsiteCopy:
        _, out, _ = await self._run("snapshots", "--json", "--tag", TAG)
        try:
            snapshots = json.loads(out) or []
        except json.JSONDecodeError:
            raise BackupError("restic snapshots answered something that is not JSON") from None
        copies = []
        for snapshot in snapshots:
            ids = [tag for tag in snapshot.get("tags") or [] if tag.startswith(BACKUP_ID_PREFIX)]
            if ids:
                moment = _restic_time(str(snapshot.get("time", "")))
                copies.append(OffsiteCopy("restic", ids[0], str(snapshot["id"]), moment))
        if not copies:
            raise BackupError(f"the restic repository holds no `{TAG}` backup yet: run `silver-auth backup`")
        # Backup ids sort by the time they were made; of two snapshots of one backup, the newer counts.
        return max(copies, key=lambda copy: (copy.backup_id, copy.time or datetime.min.replace(tzinfo=UTC)))

    async def fetch(self, copy: OffsiteCopy, target: Path) -> None:
        await self._run("restore", copy.reference, "--target", str(target))


def _restic_time(value: str) -> datetime | None:
    """restic's RFC 3339 time (nanoseconds, local offset or Z), or None."""
    match = RESTIC_TIME.match(value)
    if match is None:
        return None
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    return datetime.fromisoformat(f"{match['second']}{(match['fraction'] or '')[:7]}{zone}")


def _tar(directory: Path, target: Path) -> None:
    with tarfile.open(target, "w") as archive:
        archive.add(directory, arcname=directory.name)


class AgeFiles:
    def __init__(self, target: AgeTarget) -> None:
        self.target = target

    def _recipients(self) -> list[x25519.Recipient]:
        return [x25519.Recipient.from_str(recipient) for recipient in self.target.recipients]

    def _send(self, directory: Path, backup_id: str) -> Path:
        final = self.target.directory / f"{backup_id}{AGE_SUFFIX}"
        with tempfile.TemporaryDirectory(dir=directory.parent, prefix=".age-") as scratch:
            archive = Path(scratch) / "backup.tar"
            _tar(directory, archive)
            # Written under a hidden name, then renamed: a reader never sees half an encrypted file.
            partial = self.target.directory / f".{backup_id}{AGE_SUFFIX}.partial"
            try:
                pyrage.encrypt_file(str(archive), str(partial), self._recipients())
                partial.chmod(0o600)
                partial.replace(final)
            except (pyrage.EncryptError, OSError) as exc:
                partial.unlink(missing_ok=True)
                raise BackupError(
                    f"age encryption to {self.target.directory} failed: {type(exc).__name__}"
                ) from None
        return final

    async def send(self, directory: Path, backup_id: str) -> OffsiteCopy:
        final = await asyncio.to_thread(self._send, directory, backup_id)
        return OffsiteCopy("age", backup_id, str(final))

    async def newest(self) -> OffsiteCopy:
        files = sorted(self.target.directory.glob(f"{BACKUP_ID_PREFIX}*{AGE_SUFFIX}"))
        if not files:
            raise BackupError(
                f"{self.target.directory} holds no age-encrypted backup yet: run `silver-auth backup`"
            )
        newest = files[-1]  # backup ids sort by time
        return OffsiteCopy("age", newest.name.removesuffix(AGE_SUFFIX), str(newest))

    def _fetch(self, copy: OffsiteCopy, target: Path) -> None:
        identities = load_identities(self.target)
        archive = target / ".backup.tar"
        try:
            pyrage.decrypt_file(copy.reference, str(archive), identities)
        except pyrage.DecryptError:
            raise BackupError(
                f"{copy.reference} does not decrypt with SILVER_BACKUP_AGE_IDENTITY_FILE: it was altered, "
                "or encrypted to another key"
            ) from None
        try:
            with tarfile.open(archive) as unpacked:
                unpacked.extractall(target, filter="data")  # no absolute paths, links out or devices
        except tarfile.TarError as exc:
            raise BackupError(f"{copy.reference} does not hold a backup archive: {exc}") from None
        finally:
            archive.unlink(missing_ok=True)

    async def fetch(self, copy: OffsiteCopy, target: Path) -> None:
        await asyncio.to_thread(self._fetch, copy, target)


Offsite = Restic | AgeFiles


def offsite_targets(credentials: BackupCredentials) -> list[Offsite]:
    targets: list[Offsite] = []
    if credentials.restic is not None:
        targets.append(Restic(credentials.restic, credentials))
    if credentials.age is not None:
        targets.append(AgeFiles(credentials.age))
    return targets
