"""Signing registry tags (SSH by default, GPG supported) with the key from `--signing-key`, the
MODELOPS_SIGNING_KEY environment variable (for CI: a private key's text or a path), or git config.

Verification lives in verify.py (it must not trust git's own verify-tag time handling).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelops_ci import git
from modelops_ci.errors import UserError
from modelops_ci.registry import signatures

KEY_ENV = "MODELOPS_SIGNING_KEY"


class SigningError(UserError):
    """No usable signing key, or git could not sign."""


@dataclass(frozen=True)
class SigningKey:
    """A key git can sign with: `format` is ssh or openpgp; `key` a path (ssh) or key id (gpg)."""

    format: str
    key: str


def resolve_key(root: Path, given: str | None = None, fmt: str | None = None) -> SigningKey:
    """The key to sign with: --signing-key, then $MODELOPS_SIGNING_KEY, then git's user.signingkey."""
    chosen_format = fmt or _config(root, "gpg.format") or "ssh"
    if chosen_format == "gpg":
        chosen_format = "openpgp"
    key = given or os.environ.get(KEY_ENV) or _config(root, "user.signingkey")
    if not key:
        raise SigningError("no signing key: pass --signing-key, set MODELOPS_SIGNING_KEY, or "
                           "`git config user.signingkey ~/.ssh/id_ed25519.pub`")
    return SigningKey(chosen_format, key)


@contextmanager
def _key_file(key: SigningKey) -> Iterator[str]:
    """A path git can use: the key itself when it is a file, else a private temp copy of its text."""
    if key.format != "ssh" or "PRIVATE KEY" not in key.key:
        yield key.key
        return
    with tempfile.TemporaryDirectory(prefix="modelops-key-") as folder:
        path = Path(folder) / "signing_key"
        path.write_text(key.key.strip() + "\n", encoding="utf-8")
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)  # ssh-keygen refuses a readable private key
        yield str(path)


def create_tag(root: Path, tag: str, commit: str, message: str, key: SigningKey) -> None:
    """Create the annotated, signed tag `tag` on `commit` (locally; pushing is the caller's)."""
    with _key_file(key) as path:
        done = git.run("-c", f"gpg.format={key.format}", "-c", f"user.signingkey={path}",
                       "tag", "-s", "-F", "-", tag, commit, cwd=root, check=False, stdin=message)
    said = _redacted(done.stderr.strip() or done.stdout.strip(), key)
    if done.returncode != 0:
        raise SigningError(f"git could not sign tag {tag}: {said}")
    if not _signed(root, tag):
        # git 2.39 exits 0 and writes the tag unsigned when ssh-keygen cannot load the key.
        _remove(root, tag)
        raise SigningError(f"git made tag {tag} without a signature, so it was removed: {said or 'no reason given'}; "
                           f"give a usable {key.format} key (--signing-key, {KEY_ENV} or user.signingkey)")


def _signed(root: Path, tag: str) -> bool:
    raw = git.run("cat-file", "tag", f"refs/tags/{tag}", cwd=root, check=False).stdout
    return bool(signatures.TagObject.parse(raw.encode()).signature)


def _remove(root: Path, tag: str) -> None:
    oid = git.run("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", cwd=root, check=False).stdout.strip()
    if oid:  # only the tag just made, not one another process put there since
        git.run("update-ref", "-d", f"refs/tags/{tag}", oid, cwd=root, check=False)


def _redacted(text: str, key: SigningKey) -> str:
    """git echoes a key it cannot load; a key's text (a CI secret, maybe mangled) must not reach a log."""
    try:
        is_path = Path(key.key).is_file()
    except (OSError, ValueError):
        is_path = False
    if key.format != "ssh" or is_path or not key.key.strip():
        return text
    return text.replace(key.key.strip(), "<the signing key>")


def _config(root: Path, name: str) -> str:
    return git.run("config", "--get", name, cwd=root, check=False).stdout.strip()
