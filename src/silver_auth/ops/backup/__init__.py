"""Backups and restore drills (G22-G24, L3, L4): `dump` (a consistent dump), `manifest` (what it holds,
sealed), `credentials` (env.backup), `offsite` (restic or age), `service` (one backup run), `schedule`
(the worker's), `drill` and `canary` (the restore drill and its proof that the copy works)."""
