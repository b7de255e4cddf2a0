"""SEQN as an OpenID Provider for customers' apps, one issuer per project and environment:
`{auth_url}/p/{project_id}/{environment}` (OpenID Connect Core 1.0 with the OAuth 2.1 draft's rules).

It signs users in with the hosted pages, their sessions, MFA and signing keys: the authorize endpoint
hands a signed authorization request to the hosted sign-in page, which issues the code; the token
endpoint redeems it with `endusers.grants`, so codes and refresh tokens keep their single use, rotation
and reuse detection.
"""
