"""`python -m silver_auth.cli`."""

from silver_auth.cli import main

main()
