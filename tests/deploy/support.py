"""What the deploy tests share: every setting's environment variable name."""

from __future__ import annotations

from silver_auth.settings import Settings


def setting_names() -> set[str]:
    """The variable each setting of settings.py is read from (its alias, or its first alias choice)."""
    names = set()
    for name, field in Settings.model_fields.items():
        if field.alias:
            names.add(field.alias)
        elif field.validation_alias is not None:
            names.add(str(field.validation_alias.choices[0]))  # type: ignore[union-attr]
        else:
            names.add(name.upper())
    return names
